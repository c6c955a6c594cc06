"""Comparing two configs for a reload: every key classified, details that show no secret, and the
running config keeping what needs a restart."""

from __future__ import annotations

from pathlib import Path

from smallyi.config import Settings, parse_settings
from smallyi.config_changes import LIVE, RESTART, classify, compare, keys, merge

HASH = "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
HASH2 = "$2b$12$" + "A" * 53

OLD = f"""
server: {{listen: "127.0.0.1:8080"}}
database: {{driver: postgres, source: "postgresql://ops:db-pass-1@db1/smallyi"}}
auth:
  users:
    - {{username: admin, password_hash: "{HASH}"}}
    - {{username: bob, password_hash: "{HASH}", role: viewer}}
ssh: {{user: root, connect_timeout: 10s}}
execution: {{max_concurrency: 500}}
policy:
  rules:
    - {{name: no-rm, deny: ["rm -rf /"]}}
notify:
  channels:
    ops: {{kind: slack, url: "https://hooks.example/T000/B000/old-token-xyz"}}
gitops: {{webhook_secret: "hook-secret-1"}}
tickets: {{url: "https://tickets.example/api?key=ticket-key-1"}}
secrets: {{master_key: "bWFzdGVyLWtleS1vbmUtMzItYnl0ZXMtbG9uZy4uLi4="}}
"""

NEW = f"""
server: {{listen: "127.0.0.1:9090", cookie_secure: always}}
database: {{driver: postgres, source: "postgresql://ops:db-pass-2@db2/smallyi"}}
auth:
  users:
    - {{username: admin, password_hash: "{HASH2}"}}
    - {{username: bob, password_hash: "{HASH}", role: operator, groups: [web]}}
    - {{username: carol, password_hash: "{HASH}"}}
ssh: {{user: deploy, connect_timeout: 3s}}
execution: {{max_concurrency: 50}}
policy:
  rules:
    - {{name: no-rm, deny: ["rm -rf /"]}}
    - {{name: no-reboot, deny: [reboot]}}
notify:
  channels:
    ops: {{kind: slack, url: "https://hooks.example/T000/B000/new-token-abc"}}
    dev: {{kind: slack, url: "https://hooks.example/T000/B000/dev-token-def"}}
gitops: {{webhook_secret: "hook-secret-2"}}
tickets: {{url: "https://tickets.example/api?key=ticket-key-2"}}
secrets: {{master_key: "bWFzdGVyLWtleS10d28tMzItYnl0ZXMtbG9uZy4uLi4uLg=="}}
terminal: {{max_recording: 64MiB}}
"""


def _pair(tmp: Path) -> tuple[Settings, Settings]:
    return parse_settings(OLD, base_dir=tmp), parse_settings(NEW, base_dir=tmp)


def test_every_key_of_the_config_is_classified() -> None:
    """A key added to the config must be declared live or restart-only here (else it silently waits)."""
    unclassified = [k for k in keys() if k not in LIVE and k.split(".")[0] not in LIVE
                     and k not in RESTART and k.split(".")[0] not in RESTART]
    assert unclassified == []
    assert not (set(LIVE) & set(RESTART))


def test_changes_are_named_per_key_with_what_changed(tmp_path: Path) -> None:
    """Each changed key once, in file order, with old -> new for plain values and names for collections;
    listen, the database and the master key wait for a restart, the rest is live."""
    old, new = _pair(tmp_path)
    got = {c.key: c for c in compare(old, new)}
    assert list(got) == ["server.listen", "server.cookie_secure", "database.source", "auth.users", "ssh.user",
                         "ssh.connect_timeout", "execution.max_concurrency", "policy.rules", "secrets.master_key",
                         "gitops.webhook_secret", "notify.channels", "tickets.url", "terminal.max_recording"]
    assert got["server.listen"].detail == "127.0.0.1:8080 -> 127.0.0.1:9090" and not got["server.listen"].live
    assert "socket" in got["server.listen"].restart
    assert got["auth.users"].detail == ("added carol; changed admin (password), "
                                        "bob (role viewer -> operator, groups [] -> [web])")
    assert got["ssh.connect_timeout"].detail == "10s -> 3s" and got["ssh.connect_timeout"].live
    assert got["policy.rules"].detail == "added no-reboot"
    assert got["notify.channels"].detail == "added dev; changed ops"
    assert got["terminal.max_recording"].detail == "32MiB -> 64MiB"
    assert not got["database.source"].live and not got["secrets.master_key"].live
    assert [k for k, c in got.items() if not c.live] == ["server.listen", "database.source", "secrets.master_key"]


def test_details_never_show_a_secret(tmp_path: Path) -> None:
    """Passwords in URLs, webhook and master keys, channel URLs, ticket URLs and password hashes stay out of
    every detail (they go to logs and the audit trail)."""
    old, new = _pair(tmp_path)
    text = repr([c.to_dict() for c in compare(old, new)])
    for secret in ("db-pass-1", "db-pass-2", "hook-secret", "old-token", "new-token", "dev-token", "ticket-key",
                   "bWFzdGVy", HASH[7:20], HASH2[7:20]):
        assert secret not in text
    got = {c.key: c.detail for c in compare(old, new)}
    assert got["database.source"] == "postgresql://ops:***@db1/smallyi -> postgresql://ops:***@db2/smallyi"
    assert got["gitops.webhook_secret"] == got["secrets.master_key"] == got["tickets.url"] == "changed"


def test_merge_keeps_what_needs_a_restart_at_its_running_value(tmp_path: Path) -> None:
    """The settings the server runs after a reload: the new live values, the old ones for the rest."""
    old, new = _pair(tmp_path)
    merged = merge(old, new, compare(old, new))
    assert merged.server.listen == "127.0.0.1:8080" and merged.server.cookie_secure == "always"
    assert merged.database == old.database and merged.secrets == old.secrets
    assert merged.ssh.user == "deploy" and merged.execution.max_concurrency == 50
    assert [u.username for u in merged.auth.users] == ["admin", "bob", "carol"]
    assert compare(merged, new) == [c for c in compare(old, new) if not c.live]


def test_unchanged_configs_compare_equal(tmp_path: Path) -> None:
    """The same file twice: nothing to report."""
    old, _ = _pair(tmp_path)
    assert compare(old, parse_settings(OLD, base_dir=tmp_path)) == []


def test_an_unknown_key_waits_for_a_restart() -> None:
    """A key nobody classified is not applied live (the safe side)."""
    assert classify("server.listen") == RESTART["server.listen"]
    assert classify("database.driver") == RESTART["database"]
    assert classify("ssh.user") == ""
    assert classify("newsection.key") == "small-yi does not apply this key while it runs"


def test_a_changed_bus_waits_for_a_restart_and_hides_its_password() -> None:
    """The bus is connected at start: a new driver or Redis URL waits for a restart, and the URL's password
    stays out of the detail."""
    old = parse_settings("bus:\n  driver: redis\n  url: redis://:pw-one@cache-1:6379/0\n")
    new = parse_settings("bus:\n  driver: redis\n  url: redis://:pw-two@cache-2:6379/0\n  stream_maxlen: 500\n")
    got = {c.key: c for c in compare(old, new)}
    assert set(got) == {"bus.url", "bus.stream_maxlen"} and not any(c.live for c in got.values())
    assert got["bus.url"].detail == "redis://:***@cache-1:6379/0 -> redis://:***@cache-2:6379/0"
    assert got["bus.url"].restart == "the event bus is connected when the server starts"
