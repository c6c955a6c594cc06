"""Config loading: the original's smallest file works; every mistake names its place."""

import json
import re
from pathlib import Path

import pytest

from smallyi.config import load_settings, parse_listen, parse_settings, redact_url
from smallyi.errors import ConfigError

HASH = "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
SMALLEST = f"""
database:
  driver: sqlite3
  source: ./data/small-yi.db
auth:
  users:
    - username: admin
      password_hash: "{HASH}"
"""


def test_smallest_config_of_the_original(tmp_path: Path) -> None:
    """The smallest valid file from PRODUCT.md loads; the db path resolves against the file's folder."""
    p = tmp_path / "config.yaml"
    p.write_text(SMALLEST)
    s = load_settings(p)
    assert s.database.driver == "sqlite3"
    assert s.database.source == str(tmp_path / "data" / "small-yi.db")
    assert s.server.listen == ":8080"
    assert s.auth.users[0].username == "admin"
    assert s.auth.users[0].role == "admin"
    assert s.database_url.startswith("sqlite+aiosqlite:///")


def test_ssh_section_and_durations() -> None:
    """The ssh section of the foundation issue parses, with Go durations."""
    s = parse_settings(SMALLEST + """
server:
  listen: "127.0.0.1:9000"
ssh:
  user: root
  private_key: ~/.ssh/id_ed25519
  known_hosts: ~/.ssh/known_hosts
  host_key_policy: accept-new
  connect_timeout: 1m30s
""")
    assert s.ssh.connect_timeout == 90
    assert s.ssh.host_key_policy == "accept-new"
    assert s.ssh.private_key and s.ssh.private_key.endswith(".ssh/id_ed25519") and "~" not in s.ssh.private_key
    assert s.server.host_port() == ("127.0.0.1", 9000)


def test_missing_file_names_it(tmp_path: Path) -> None:
    """A missing config says which file and how to give another."""
    with pytest.raises(ConfigError, match=r"nope\.yaml not found.*--config"):
        load_settings(tmp_path / "nope.yaml")


def test_yaml_syntax_error_has_line_and_column() -> None:
    """A YAML syntax error names line and column."""
    with pytest.raises(ConfigError, match=r"line 3, column 10: YAML syntax error: mapping values"):
        parse_settings("database:\n  driver: sqlite3\n   source: x\n")


def test_unknown_key_is_named() -> None:
    """A misspelt key is named with its section."""
    with pytest.raises(ConfigError, match="unknown key 'database.sorce'"):
        parse_settings("database:\n  sorce: x.db\n")


def test_malformed_bcrypt_hash_names_the_user() -> None:
    """A password_hash that is not bcrypt names the user it belongs to."""
    with pytest.raises(ConfigError, match=r"auth\.users\.1\.password_hash \(user 'bob'\)"):
        parse_settings(f"""
auth:
  users:
    - username: admin
      password_hash: "{HASH}"
    - username: bob
      password_hash: "plaintext"
""")


def test_bad_duration_and_driver() -> None:
    """Bad values name their field."""
    with pytest.raises(ConfigError, match="ssh.connect_timeout"):
        parse_settings("ssh:\n  connect_timeout: soon\n")
    with pytest.raises(ConfigError, match="database.driver"):
        parse_settings("database:\n  driver: mysql\n")


def test_postgres_url_and_redaction() -> None:
    """A postgres source becomes an asyncpg URL; errors show it without the password."""
    s = parse_settings("database:\n  driver: postgres\n  source: postgresql://u:s3cret@db:5432/x\n")
    assert s.database_url == "postgresql+asyncpg://u:s3cret@db:5432/x"
    assert redact_url(s.database.source) == "postgresql://u:***@db:5432/x"


@pytest.mark.parametrize(("listen", "expected"), [
    (":8080", ("0.0.0.0", 8080)), ("[::1]:81", ("::1", 81)), ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("localhost:65535", ("localhost", 65535)), ("ops-1.example.com:443", ("ops-1.example.com", 443)),
])
def test_listen_forms(listen: str, expected: tuple[str, int]) -> None:
    """server.listen takes :PORT and HOST:PORT (an IPv4 address, [IPv6] or a host name), port 0-65535."""
    assert parse_listen(listen) == expected
    assert parse_settings(f'server:\n  listen: "{listen}"\n').server.host_port() == expected


@pytest.mark.parametrize(("listen", "message"), [
    ("localhost", "'localhost' is not HOST:PORT or :PORT"),
    (":99999", "':99999': port 99999 is not 0-65535"),
    (":-1", "is not HOST:PORT or :PORT"),
    (":\uff18\uff10", "is not HOST:PORT or :PORT"),  # full-width digits: str.isdigit() took them
    ("300.1.1.1:80", "'300.1.1.1' is not an IPv4 address"),
    ("[nope]:80", "'nope' is not an IPv6 address"),
    ("::1:80", "write an IPv6 address in brackets"),
    ("a b:80", "'a b' is not an IP address or a host name"),
    ('x"\nauth:\n  users: []\n#:80', "is not an IP address or a host name"),
])
def test_listen_mistakes_name_the_key_when_the_config_loads(listen: str, message: str) -> None:
    """A bad listen address is a ConfigError naming server.listen (or --listen) when the file loads, not a
    traceback when the server binds."""
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        parse_settings(f"server:\n  listen: {json.dumps(listen)}\n")
    assert "server.listen: " in err.value.message
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        parse_listen(listen, field="--listen")
    assert err.value.message.startswith("--listen: ")


@pytest.mark.parametrize("key", ["execution:\n  default_timeout", "gitops:\n  timeout", "ssh:\n  connect_timeout"])
def test_a_zero_timeout_in_the_config_is_refused(key: str) -> None:
    """A timeout of 0 would have meant no limit without saying so; the config refuses it, naming the key."""
    dotted = key.replace(":\n  ", ".")
    with pytest.raises(ConfigError, match=re.escape(f"{dotted}: must be more than 0s")):
        parse_settings(f"{key}: 0s\n")
    assert parse_settings(f"{key}: 6h\n")


def test_terminal_section() -> None:
    """terminal: takes a Go duration and a size with units; defaults are 15 minutes and 32 MiB, local on."""
    d = parse_settings(SMALLEST).terminal
    assert (d.idle_timeout, d.max_recording, d.local) == (900.0, 32 * 1024 * 1024, True)
    s = parse_settings(SMALLEST + "terminal:\n  idle_timeout: 1m30s\n  max_recording: 512KiB\n  local: false\n")
    assert (s.terminal.idle_timeout, s.terminal.max_recording, s.terminal.local) == (90.0, 512 * 1024, False)
    assert parse_settings(SMALLEST + "terminal:\n  max_recording: 1048576\n").terminal.max_recording == 1048576


@pytest.mark.parametrize(("block", "message"), [
    ("idle_timeout: 0", "terminal.idle_timeout: must be more than 0"),
    ("idle_timeout: soon", "terminal.idle_timeout: 'soon' is not a duration"),
    ("max_recording: 32 MBs", "terminal.max_recording: '32 MBs' is not a size"),
    ("max_recording: 100", "terminal.max_recording: 100 bytes is too small"),
    ("idle: 5m", "unknown key 'terminal.idle'"),
])
def test_terminal_mistakes_name_the_key(block: str, message: str) -> None:
    """A bad terminal value is a ConfigError naming terminal.<key> and what would work."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_settings(SMALLEST + f"terminal:\n  {block}\n")


def test_the_bus_is_in_memory_unless_the_config_asks_for_redis() -> None:
    """No bus section: the in-process bus, as before; a redis one keeps its URL, window and prefix."""
    s = parse_settings(SMALLEST)
    assert s.bus.driver == "memory"
    s = parse_settings(SMALLEST + "bus:\n  driver: redis\n  url: rediss://:pw@cache-1:6380/2\n"
                                  "  stream_maxlen: 5000\n  prefix: \"prod:\"\n")
    assert (s.bus.driver, s.bus.url, s.bus.stream_maxlen, s.bus.prefix) == (
        "redis", "rediss://:pw@cache-1:6380/2", 5000, "prod:")
    assert parse_settings(SMALLEST + "bus:\n  url: unix:///run/redis/redis.sock\n").bus.url.startswith("unix:")


@pytest.mark.parametrize(("block", "message"), [
    ("driver: kafka", "bus.driver: Input should be 'memory' or 'redis'"),
    ("url: http://cache-1:6379/0", "bus.url: 'http://cache-1:6379/0' is not a Redis URL (e.g. redis://"),
    ("url: redis://:s3cret@cache-1:port/0", "bus.url: 'redis://:***@cache-1:port/0': the port is not a number"),
    ("url: redis://cache-1:6379/zero", "bus.url: 'redis://cache-1:6379/zero': the database after the / is a number"),
    ("url: redis:///0", "bus.url: 'redis:///0' names no host"),
    ("stream_maxlen: 10", "bus.stream_maxlen: Input should be greater than or equal to 100"),
    ("window: 5", "unknown key 'bus.window'"),
])
def test_bus_mistakes_name_the_key(block: str, message: str) -> None:
    """A bad bus value is a ConfigError naming bus.<key>, with no password shown."""
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        parse_settings(SMALLEST + f"bus:\n  {block}\n")
    assert "s3cret" not in caught.value.message


def test_notification_templates_are_checked_when_the_config_loads() -> None:
    """A template that does not parse, or one for an event that does not exist (a typo), is a config
    error naming it, not a silent fallback to the default at send time; every event has a default."""
    from smallyi.config import NOTIFY_EVENTS
    from smallyi.notify.templates import DEFAULTS

    with pytest.raises(ConfigError, match=r"notify.templates: the task template is not valid Jinja2"):
        parse_settings('notify:\n  templates:\n    task: "{{ command"\n', base_dir=".")
    with pytest.raises(ConfigError, match=r"no notification event 'sop-run' \(events: sop_run, task"):
        parse_settings("notify:\n  templates:\n    sop-run: x\n", base_dir=".")
    assert set(NOTIFY_EVENTS) == set(DEFAULTS) - {"message"}
    assert parse_settings("notify:\n  templates:\n    task: '{{ command }}'\n", base_dir=".").notify.templates


def test_door_limits_and_the_audit_anchor_have_defaults_and_checked_values(tmp_path: Path) -> None:
    """server.max_body and max_ws_message are sizes with a floor; the anchor file lies beside the audit key
    unless given (relative to the config file); the anchor webhook must be an http(s) URL."""
    s = parse_settings("secrets:\n  key_file: keys/master.key\n", base_dir=tmp_path)
    assert (s.server.max_body, s.server.max_ws_message) == (4 * 1024 * 1024, 1024 * 1024)
    assert s.server.trusted_proxies == ["127.0.0.1", "::1"] and s.auth.address_max_failures == 20
    assert s.audit.anchor_file == str(tmp_path / "keys" / "audit.anchor")
    s = parse_settings("server:\n  max_body: 16MiB\naudit:\n  anchor_file: a/anchor.json\n", base_dir=tmp_path)
    assert s.server.max_body == 16 * 1024 * 1024 and s.audit.anchor_file == str(tmp_path / "a" / "anchor.json")
    with pytest.raises(ConfigError, match=r"server.max_body: 100 bytes is too small"):
        parse_settings("server:\n  max_body: 100\n")
    with pytest.raises(ConfigError, match=r"audit.anchor_webhook: must be an http:// or https:// URL"):
        parse_settings("audit:\n  anchor_webhook: ftp://x\n")
