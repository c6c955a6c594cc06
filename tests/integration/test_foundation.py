"""The foundation through real HTTP: serve, login, tokens, throttling, and clear start-up errors."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import httpx
import pytest

from support import ADMIN_HASH, ADMIN_PASSWORD, Server, cli, start_server, write_config


def test_serve_with_smallest_config(server: Server, config_file: Path) -> None:
    """serve with the original's smallest config answers /healthz, creates the SQLite file and the local host."""
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    assert (config_file.parent / "data" / "small-yi.db").exists()
    with server.client() as c:
        hosts = c.get("/api/v1/hosts", params={"group": "local"}).json()
    assert [h["name"] for h in hosts["items"]] == ["local"]
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "small-yi" in page.text


def test_openapi_lists_the_api(server: Server) -> None:
    """OpenAPI is served at /openapi.json and covers the v1 routes."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/auth/login" in spec["paths"] and "/api/v1/tasks" in spec["paths"]


def test_login_gives_a_bearer_token(server: Server) -> None:
    """POST /api/v1/auth/login answers {"token": ...}; the token authenticates; logout ends it."""
    r = httpx.post(f"{server.url}/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    token = r.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{server.url}/api/v1/auth/me", headers=auth).json()
    assert {k: me[k] for k in ("username", "role", "token_kind", "groups")} == {
        "username": "admin", "role": "admin", "token_kind": "session", "groups": []}
    assert "sop.run" in me["permissions"] and "approvals.decide" in me["permissions"]
    assert httpx.post(f"{server.url}/api/v1/auth/logout", headers=auth).status_code == 204
    r = httpx.get(f"{server.url}/api/v1/auth/me", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_wrong_password_and_unknown_user(server: Server) -> None:
    """Bad credentials are one 401 with the common error shape, the same for unknown users."""
    for user, pw in (("admin", "nope"), ("ghost", "nope")):
        r = httpx.post(f"{server.url}/api/v1/auth/login", json={"username": user, "password": pw})
        assert r.status_code == 401
        assert r.json() == {"error": {"code": "unauthorized", "message": "wrong username or password"}}


def test_every_api_route_needs_auth(server: Server) -> None:
    """Without a token the API answers 401, whatever the route."""
    for method, path in (("GET", "/api/v1/hosts"), ("GET", "/api/v1/tasks"), ("POST", "/api/v1/tasks"),
                         ("GET", "/api/v1/results"), ("GET", "/api/v1/auth/tokens")):
        r = httpx.request(method, f"{server.url}{path}", json={})
        assert r.status_code == 401, path


def test_failed_logins_are_throttled(server: Server) -> None:
    """Past five failures the same user and address get 429 with Retry-After, even with the right password."""
    url = f"{server.url}/api/v1/auth/login"
    for _ in range(5):
        assert httpx.post(url, json={"username": "admin", "password": "bad"}).status_code == 401
    r = httpx.post(url, json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["code"] == "too_many_requests"


def test_api_tokens_created_listed_revoked(server: Server) -> None:
    """An API token is shown once, listed by prefix only, works, and stops working when revoked."""
    with server.client() as c:
        r = c.post("/api/v1/auth/tokens", json={"name": "ci"})
        assert r.status_code == 201
        created = r.json()
        token = created["token"]
        assert token.startswith("syt_")
        listed = c.get("/api/v1/auth/tokens").json()
        assert listed["total"] == 1 and "token" not in listed["items"][0]
        assert listed["items"][0]["prefix"] == token[:10]
        second = c.post("/api/v1/auth/tokens", json={"name": "deploy"}).json()
        pages = [c.get("/api/v1/auth/tokens", params={"limit": 1, "offset": k}).json() for k in (0, 1)]
        assert [[t["name"] for t in p["items"]] for p in pages] == [["deploy"], ["ci"]]  # newest first
        assert {p["total"] for p in pages} == {2}
        assert c.delete(f"/api/v1/auth/tokens/{second['id']}").status_code == 204
        api = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.url}/api/v1/auth/me", headers=api).json()["token_kind"] == "api"
        assert c.delete(f"/api/v1/auth/tokens/{created['id']}").status_code == 204
        assert httpx.get(f"{server.url}/api/v1/auth/me", headers=api).status_code == 401
        assert c.delete(f"/api/v1/auth/tokens/{created['id']}").status_code == 404


def test_tokens_are_stored_hashed_and_never_logged(server: Server, config_file: Path) -> None:
    """The database holds only token digests; neither passwords nor tokens reach the server log."""
    token = server.login()
    with server.client(token) as c:
        api_token = c.post("/api/v1/auth/tokens", json={"name": "x"}).json()["token"]
    db = sqlite3.connect(config_file.parent / "data" / "small-yi.db")
    stored = [row[0] for row in db.execute("SELECT token_hash FROM api_tokens")]
    db.close()
    assert token not in stored and api_token not in stored and all(len(h) == 64 for h in stored)
    httpx.post(f"{server.url}/api/v1/auth/login", json={"username": "admin", "password": "wrong-pw-123"})
    log = server.output()
    for secret in (token, api_token, ADMIN_PASSWORD, "wrong-pw-123"):
        assert secret not in log


def test_config_users_are_the_source_of_truth(tmp_path: Path) -> None:
    """A user removed from the config can no longer log in or use old tokens after restart."""
    cfg = write_config(tmp_path, users=(
        f'auth:\n  users:\n    - username: admin\n      password_hash: "{ADMIN_HASH}"\n'
        f'    - username: bob\n      password_hash: "{ADMIN_HASH}"\n      role: viewer\n'
    ))
    srv = start_server(cfg)
    try:
        bob = srv.login("bob")
        me = httpx.get(f"{srv.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {bob}"}).json()
        assert me["role"] == "viewer" and "sop.read" in me["permissions"] and "sop.run" not in me["permissions"]
    finally:
        srv.stop()
    write_config(tmp_path)  # only admin now
    srv = start_server(cfg)
    try:
        r = httpx.get(f"{srv.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {bob}"})
        assert r.status_code == 401 and "disabled" in r.json()["error"]["message"]
        with pytest.raises(httpx.HTTPStatusError):
            srv.login("bob")
    finally:
        srv.stop()


def test_a_user_whose_hash_htpasswd_made_logs_in(tmp_path: Path) -> None:
    """A config user with a $2y$ hash from Apache's htpasswd (as PHP writes them) logs in to the API."""
    cfg = write_config(tmp_path, users=(
        'auth:\n  users:\n    - username: ops\n'
        '      password_hash: "$2y$05$dYOFfzzpsT/soGYY3utBF.viiunw.966/ebTDPdBZwZ7X10qPGire"\n'
    ))
    srv = start_server(cfg)
    try:
        token = srv.login("ops", "secret")
        me = httpx.get(f"{srv.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["username"] == "ops" and me["role"] == "admin"
        r = httpx.post(f"{srv.url}/api/v1/auth/login", json={"username": "ops", "password": "Secret"})
        assert r.status_code == 401
    finally:
        srv.stop()


def test_error_shape_for_bad_payload(server: Server) -> None:
    """A malformed payload gets 422 with the common shape naming the field."""
    with server.client() as c:
        r = c.post("/api/v1/tasks", json={"target": {"group": "local"}, "cmd": "uptime", "bogus": 1})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input" and err["field"] == "bogus"


def test_port_in_use_is_a_clear_error(config_file: Path) -> None:
    """serve on a busy port exits non-zero with one line saying so, no traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = cli("serve", "--listen", f"127.0.0.1:{port}", config=config_file, timeout=30)
    assert r.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


def test_unreachable_database_is_named_without_password(tmp_path: Path) -> None:
    """An unreachable PostgreSQL URL is named in the error with its password hidden."""
    cfg = write_config(tmp_path, database=(
        "database:\n  driver: postgres\n  source: postgresql://bob:hunter2@127.0.0.1:1/nodb\n"
    ))
    r = cli("db", "upgrade", config=cfg, timeout=60)
    assert r.returncode == 2
    assert "postgresql://bob:***@127.0.0.1:1/nodb" in r.stderr
    assert "hunter2" not in r.stderr and "Traceback" not in r.stderr


def test_bad_configs_exit_cleanly(tmp_path: Path) -> None:
    """Missing or unreadable file, bad YAML, unknown key, malformed hash: one paragraph each, exit 2, nothing written."""
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    cases = {
        "missing.yaml": None,
        "folder.yaml": None,
        "binary.yaml": None,
        "syntax.yaml": "database:\n  driver: sqlite3\n   source: x\n",
        "unknown.yaml": "database:\n  driver: sqlite3\nserver:\n  lisen: ':1'\n",
        "hash.yaml": "auth:\n  users:\n    - username: carol\n      password_hash: nope\n",
    }
    expect = {"missing.yaml": "not found", "folder.yaml": "cannot be read: Is a directory",
              "binary.yaml": "is not UTF-8 text (byte 0)", "syntax.yaml": "line 3, column 10",
              "unknown.yaml": "unknown key 'server.lisen'", "hash.yaml": "user 'carol'"}
    for name, text in cases.items():
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
        r = cli("serve", "--listen", "127.0.0.1:0", config=p, timeout=30, cwd=tmp_path)
        assert r.returncode == 2, name
        assert expect[name] in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
    assert not (tmp_path / "data").exists()


def test_hashpwd_piped_and_verifies(tmp_path: Path) -> None:
    """hashpwd reads one line from a pipe and prints a cost-12 bcrypt hash that logs in."""
    r = cli("hashpwd", input="pa55 word\n")
    assert r.returncode == 0
    h = r.stdout.strip()
    assert h.startswith("$2b$12$") and len(h) == 60
    cfg = write_config(tmp_path, users=f'auth:\n  users:\n    - username: eve\n      password_hash: "{h}"\n')
    srv = start_server(cfg)
    try:
        assert srv.login("eve", "pa55 word").startswith("sys_")
    finally:
        srv.stop()


def test_hashpwd_on_a_terminal_prompts_twice() -> None:
    """On a terminal hashpwd asks twice and refuses when the two differ."""
    import pexpect  # type: ignore[import-untyped]

    from support import SMALL_YI

    child = pexpect.spawn(SMALL_YI, ["hashpwd"], encoding="utf-8", timeout=30)
    child.expect("Password: ")
    child.sendline("abc12345")
    child.expect("Again: ")
    child.sendline("abc12345")
    child.expect(r"\$2b\$12\$\S{53}")
    child.expect(pexpect.EOF)
    child = pexpect.spawn(SMALL_YI, ["hashpwd"], encoding="utf-8", timeout=30)
    child.expect("Password: ")
    child.sendline("one")
    child.expect("Again: ")
    child.sendline("two")
    child.expect("differ")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_db_upgrade_alone_and_serve_upgrades_an_old_db(tmp_path: Path) -> None:
    """db upgrade migrates a new database to every head; serve brings a database left at 0001 up to date."""
    cfg = write_config(tmp_path)
    r = cli("db", "upgrade", config=cfg)
    assert r.returncode == 0 and "schema revision" in r.stdout
    path = tmp_path / "data" / "small-yi.db"
    db = sqlite3.connect(path)
    heads = {row[0] for row in db.execute("SELECT version_num FROM alembic_version")}
    assert heads and all(h in r.stdout for h in heads)
    db.close()
    old = tmp_path / "old"
    old.mkdir()
    old_cfg = write_config(old)
    (old / "data").mkdir()
    _migrate_to(old / "data" / "small-yi.db", "0001")
    srv = start_server(old_cfg)
    srv.stop()
    db = sqlite3.connect(old / "data" / "small-yi.db")
    assert {row[0] for row in db.execute("SELECT version_num FROM alembic_version")} == heads
    db.close()


@pytest.mark.postgres
def test_postgres_driver_serves(tmp_path: Path, pg_url: str) -> None:
    """database.driver postgres with a postgresql:// URL works the same: schema made, login, hosts."""
    cfg = write_config(tmp_path, database=f"database:\n  driver: postgres\n  source: {pg_url}\n")
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            assert c.get("/api/v1/hosts").json()["total"] >= 1
            assert c.post("/api/v1/auth/tokens", json={"name": "pg"}).status_code == 201
    finally:
        srv.stop()
    r = cli("db", "upgrade", config=cfg)
    assert r.returncode == 0 and "***" not in r.stdout


def _migrate_to(path: Path, revision: str) -> None:
    """A database left at an older schema revision, as an older small-yi would have left it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from smallyi.storage.db import MIGRATIONS

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_init_writes_a_starter_that_serves_and_logs_in(tmp_path: Path) -> None:
    """`small-yi init` (what `make serve` runs first) writes a 0600 config whose printed admin password logs
    in to the server it starts; a second init keeps the file unless --force."""
    import re

    cfg = tmp_path / "config.yaml"
    r = cli("init", "--listen", "127.0.0.1:0", config=cfg)
    assert r.returncode == 0, r.stderr
    password = re.search(r"log in as  admin / (\S+)  \(shown once", r.stdout)
    assert password is not None, r.stdout
    assert cfg.stat().st_mode & 0o777 == 0o600
    first = cfg.read_text()
    again = cli("init", config=cfg)
    assert again.returncode == 0 and "keeping it" in again.stdout and cfg.read_text() == first
    srv = start_server(cfg)
    try:
        assert srv.login("admin", password.group(1))
        with srv.client(srv.login("admin", password.group(1))) as c:
            assert [h["name"] for h in c.get("/api/v1/hosts", params={"group": "local"}).json()["items"]] == ["local"]
    finally:
        srv.stop()
    assert (tmp_path / "data").is_dir()  # the starter's relative paths resolve beside the config
    forced = cli("init", "--force", config=cfg)
    assert forced.returncode == 0 and cfg.read_text() != first
