"""Rough edges of a hostile review, through real CLI processes and a real server: private files on disk,
commands that cannot reach a shell intact, a zero timeout, a listen address out of range, and a config
refused only after it had created files."""

from __future__ import annotations

import gzip
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import Server, cli, start_server, write_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The usual umask (022): files made without care come out 0644, readable by every local user."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def tasks_in(folder: Path) -> int:
    db = sqlite3.connect(folder / "data" / "small-yi.db")
    try:
        return int(db.execute("SELECT count(*) FROM tasks").fetchone()[0])
    finally:
        db.close()


# -- files only their owner can read -----------------------------------------------------------------


def test_database_wal_and_keys_are_private_from_creation(tmp_path: Path) -> None:
    """A fresh start makes the data folder 0700 and the SQLite file, its -wal and -shm and both key files
    0600: the database holds every bcrypt hash, the archive and the audit trail."""
    cfg = write_config(tmp_path)
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            task = c.post("/api/v1/tasks", json={"target": {"group": "local"}, "cmd": "echo hi"}).json()
            deadline = time.monotonic() + 15
            while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        data = tmp_path / "data"
        names = {p.name for p in data.iterdir()}
        assert {"small-yi.db", "small-yi.db-wal", "small-yi.db-shm", "master.key", "audit.key"} <= names
        assert mode(data) == 0o700
        assert {p.name: oct(mode(p)) for p in data.iterdir()} == {n: oct(0o600) for n in names}
    finally:
        srv.stop()


def test_wider_database_files_are_made_private_with_a_notice(tmp_path: Path) -> None:
    """A database an older small-yi left 0644 (with its -wal) is made 0600 on the next start, which says so."""
    cfg = write_config(tmp_path)
    assert cli("db", "upgrade", config=cfg).returncode == 0
    db = tmp_path / "data" / "small-yi.db"
    wal = tmp_path / "data" / "small-yi.db-wal"
    wal.write_bytes(b"")
    db.chmod(0o644)
    wal.chmod(0o644)
    r = cli("hosts", "list", config=cfg)
    assert r.returncode == 0, r.stderr
    assert mode(db) == 0o600
    assert not wal.exists() or mode(wal) == 0o600
    assert f"{db} was readable by other users (mode 644); made it 0600" in r.stderr


def test_full_logs_and_audit_exports_are_private(tmp_path: Path) -> None:
    """Full output logs (output.full_log_dir) and `audit export --out` files are 0600 in 0700 folders."""
    cfg = write_config(tmp_path, extra="output:\n  full_log_dir: ./full-logs\n")
    r = cli("run", "--group", "local", "--cmd", "echo secret-ish", "--output", "json", config=cfg)
    assert r.returncode == 0, r.stderr
    logs = tmp_path / "full-logs"
    (task_dir,) = logs.iterdir()
    (log,) = task_dir.iterdir()
    with gzip.open(log, "rt") as fh:
        assert "secret-ish" in fh.read()
    assert (oct(mode(logs)), oct(mode(task_dir)), oct(mode(log))) == (oct(0o700), oct(0o700), oct(0o600))
    out = tmp_path / "audit.jsonl"
    r = cli("audit", "export", "--out", str(out), config=cfg)
    assert r.returncode == 0, r.stderr
    assert out.read_text() and mode(out) == 0o600


# -- commands that cannot reach a shell intact ----------------------------------------------------------


def test_a_nul_in_a_command_is_refused_by_the_api(server: Server, config_file: Path) -> None:
    """A NUL byte in a task's or a schedule's command is a 422 naming the field and the offset; nothing
    is archived or stored, so no host runs a cut command (the local shell would have run `echo a`)."""
    with server.client() as c:
        r = c.post("/api/v1/tasks", json={"target": {"group": "local"}, "cmd": "echo a\u0000b"})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["field"] == "cmd"
        assert "contains a NUL byte (\\x00) at offset 6" in err["message"]
        r = c.post("/api/v1/schedules", json={"name": "nul", "cron": "@daily", "kind": "command",
                                              "command": "\u0000rm -rf /tmp/x", "target": {"group": "local"}})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "command"
        assert "NUL byte (\\x00) at offset 0" in r.json()["error"]["message"]
        assert c.get("/api/v1/tasks").json()["total"] == 0
        assert c.get("/api/v1/schedules").json()["total"] == 0
    assert tasks_in(config_file.parent) == 0


def test_a_command_that_is_not_utf8_is_refused_by_the_cli(tmp_path: Path) -> None:
    """`run --cmd` with bytes that are not UTF-8 is one error line naming --cmd and exit 2, not a
    traceback, and no task is archived."""
    cfg = write_config(tmp_path)
    assert cli("db", "upgrade", config=cfg).returncode == 0
    r = cli("run", "--group", "local", "--cmd", "echo \udcff", config=cfg)  # the byte 0xff on the command line
    assert r.returncode == 2, r.stdout
    assert "Traceback" not in r.stderr
    assert "--cmd: the command is not UTF-8 text: offset 5" in r.stderr
    assert tasks_in(tmp_path) == 0


def test_a_nul_in_a_sop_command_is_refused_before_it_runs(tmp_path: Path) -> None:
    """A SOP whose exec command holds a NUL (YAML "\\0") is an error of `sop validate` and is refused by
    `sop run`, naming the step and the field; nothing runs."""
    cfg = write_config(tmp_path)
    sop = tmp_path / "nul.yaml"
    sop.write_text('steps:\n  - id: a\n    type: exec\n    target: { hosts: [local] }\n    cmd: "echo a\\0b"\n')
    r = cli("sop", "validate", str(sop), config=cfg)
    assert r.returncode == 1  # validate's "the file has errors"
    assert "step a: cmd: the command contains a NUL byte (\\x00) at offset 6" in r.stderr + r.stdout
    r = cli("sop", "run", str(sop), config=cfg)
    assert r.returncode == 1 and "NUL byte" in r.stderr + r.stdout  # run's "invalid file"
    assert tasks_in(tmp_path) == 0


# -- a zero timeout ---------------------------------------------------------------------------------------


def test_a_zero_timeout_is_refused_everywhere(server: Server, config_file: Path, tmp_path: Path) -> None:
    """`timeout: 0` used to mean "no timeout" without saying so; the CLI, the API, schedules and the config
    now refuse it, saying how to ask for a long one."""
    with server.client() as c:
        for body in ({"timeout": 0}, {"timeout": "0s"}, {"timeout": "0ms"}):
            r = c.post("/api/v1/tasks", json={"target": {"group": "local"}, "cmd": "sleep 1", **body})
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["field"] == "timeout"
            assert "must be more than 0s" in r.json()["error"]["message"]
        r = c.post("/api/v1/schedules", json={"name": "z", "cron": "@daily", "kind": "command", "command": "true",
                                              "target": {"group": "local"}, "timeout": "0s"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "timeout", r.text
        assert c.get("/api/v1/tasks").json()["total"] == 0
    r = cli("run", "--group", "local", "--cmd", "true", "--timeout", "0", config=config_file)
    assert r.returncode == 2 and "--timeout: must be more than 0s" in r.stderr and "e.g. 6h" in r.stderr
    r = cli("schedules", "add", "z", "--cron", "@daily", "--cmd", "true", "--group", "local", "--timeout", "0s",
            config=config_file)
    assert r.returncode == 2 and "--timeout: must be more than 0s" in r.stderr
    assert tasks_in(config_file.parent) == 0
    (tmp_path / "zero").mkdir()
    zero = write_config(tmp_path / "zero", extra="execution:\n  default_timeout: 0s\n")
    r = cli("run", "--group", "local", "--cmd", "true", config=zero)
    assert r.returncode == 2 and "execution.default_timeout: must be more than 0s" in r.stderr
    assert sorted(p.name for p in zero.parent.iterdir()) == ["config.yaml"]


# -- listen addresses and configs refused before anything is written ---------------------------------------


@pytest.mark.parametrize(("listen", "message"), [
    (":99999", "port 99999 is not 0-65535"),
    ("127.0.0.1:65536", "port 65536 is not 0-65535"),
    ("8080", "is not HOST:PORT or :PORT"),
    ("127.0.0.1:", "is not HOST:PORT or :PORT"),
    ("bad host!:80", "'bad host!' is not an IP address or a host name"),
    ("::1:8080", "write an IPv6 address in brackets"),
])
def test_a_bad_listen_address_is_a_clear_error(tmp_path: Path, listen: str, message: str) -> None:
    """A bad server.listen or --listen names the key and the valid forms: exit 2, no traceback, nothing written."""
    cfg = write_config(tmp_path, extra=f'server:\n  listen: "{listen}"\n')
    r = cli("serve", config=cfg, timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "server.listen:" in r.stderr and message in r.stderr, r.stderr
    ok = write_config(tmp_path)
    r = cli("serve", "--listen", listen, config=ok, timeout=30)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--listen:" in r.stderr and message in r.stderr, r.stderr
    r = cli("init", "--force", "--listen", listen, config=tmp_path / "new.yaml")
    assert r.returncode == 2 and "--listen:" in r.stderr and message in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_a_listen_host_that_does_not_resolve_is_named(tmp_path: Path) -> None:
    """A host name that does not resolve is named as such, not taken for a busy port."""
    cfg = write_config(tmp_path)
    r = cli("serve", "--listen", "no-such-host.invalid:8080", config=cfg, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot listen on no-such-host.invalid:8080: the host name does not resolve" in r.stderr, r.stderr
    assert "another server" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


BAD_CONFIGS = {
    "user role": ("auth:\n  users:\n    - username: bob\n      password_hash: \"{hash}\"\n      role: bogus\n",
                  "auth.users (user 'bob').role: unknown role 'bogus'; known roles: admin, auditor, operator, viewer"),
    "permission": ("roles:\n  x:\n    permissions: [nope.read]\n",
                   "roles.x.permissions: unknown permission 'nope.read'"),
    "built-in name": ("roles:\n  admin:\n    permissions: [tasks.read]\n", "roles.admin: 'admin' is a built-in role"),
    "policy role": ("policy:\n  rules:\n    - deny: [rm]\n      roles: [ghost]\n",
                    "policy.rules[0].roles: unknown role 'ghost'"),
    "policy pattern": ("policy:\n  rules:\n    - deny: ['rm \"x']\n", "pattern 'rm \"x' is not valid shell words"),
    "master key": ("secrets:\n  master_key: abc\n", "secrets.master_key: the master key is not base64"),
    "audit key": ("audit:\n  mac_key: abc\n", "audit.mac_key: the audit key is not base64"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_config_mistake_is_refused_before_anything_is_created(tmp_path: Path, case: str) -> None:
    """serve, run and db upgrade refuse a config with an unknown role (or another mistake only the whole
    config shows) before they create the data folder, the database or a key file."""
    from support import ADMIN_HASH

    block, message = BAD_CONFIGS[case]
    cfg = write_config(tmp_path, extra=block.replace("{hash}", ADMIN_HASH))
    # serve and run open the runtime; db upgrade opens the database alone, as most other commands do
    for argv in (("serve", "--listen", "127.0.0.1:0"), ("run", "--group", "local", "--cmd", "true"), ("db", "upgrade")):
        r = cli(*argv, config=cfg, timeout=60)
        assert r.returncode == 2, (argv, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"], argv
