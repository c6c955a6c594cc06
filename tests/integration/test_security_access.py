"""Access that outlives its owner, through a real server and real HTTP (security issue 18, item 4): a user
removed from the config loses their tokens, their schedules stop firing and their pending approvals are
cancelled, and coming back revives none of the old tokens; a changed password revokes sessions and API
tokens; admins list and revoke anyone's tokens from the CLI; `users sync` applies the config to a running
server at once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from test_session_sockets import closed_within, connect

from support import ADMIN_HASH, ADMIN_PASSWORD, Server, cli, start_server, write_config

pytestmark = [pytest.mark.slow]

NEW_PASSWORD = "a new and longer passphrase"
NEW_HASH = bcrypt.hashpw(NEW_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
POLICY = "policy:\n  rules:\n    - name: restarts\n      approve: ['systemctl restart *']\n"


def users(**people: str) -> str:
    """An auth section: each keyword a user, its value the rest of its entry (role, hash, flags)."""
    lines = "".join(f"    - {{username: {name}, {spec}}}\n" for name, spec in people.items())
    return f"auth:\n  session_recheck: 0.5s\n  users:\n{lines}"


def entry(role: str = "admin", password_hash: str = ADMIN_HASH, more: str = "") -> str:
    return f'password_hash: "{password_hash}", role: {role}' + (f", {more}" if more else "")


def restart(server: Server, folder: Path, auth: str) -> Server:
    server.stop()
    return start_server(write_config(folder, users=auth, extra=POLICY))


def until(what: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``what`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s")


def fires(c: httpx.Client, name: str) -> list[dict[str, Any]]:
    return list(c.get(f"/api/v1/schedules/{name}/fires", params={"limit": 1000}).json()["items"])


def audit(c: httpx.Client, action: str) -> list[dict[str, Any]]:
    return list(c.get("/api/v1/audit", params={"action": action, "limit": 1000}).json()["items"])


def me(server: Server, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_a_user_removed_from_the_config_stops_acting_and_returns_with_nothing_revived(tmp_path: Path) -> None:
    """admin2 has an API token, a schedule firing every second and a pending approval. Removed from the
    config and the server restarted: the token answers 401, the schedule shows as suspended naming her and
    its slots run nothing (audited once), the approval is cancelled and cannot be given. Back in the config:
    the old token stays dead, she logs in afresh, and the schedule runs again (with her rights then)."""
    everyone = users(admin=entry(), admin2=entry(), op=entry("operator"))
    server = start_server(write_config(tmp_path, users=everyone, extra=POLICY))
    try:
        with server.client(server.login("admin2")) as c:
            token = c.post("/api/v1/auth/tokens", json={"name": "ci"}).json()["token"]
            r = c.post("/api/v1/schedules", json={"name": "beat", "cron": "@every 1s", "kind": "command",
                                                  "command": "true", "target": {"hosts": ["local"]}})
            assert r.status_code == 201, r.text
            until(lambda: any(f["status"] == "success" for f in fires(c, "beat")))
            held = c.post("/api/v1/tasks", json={"target": {"hosts": ["local"]}, "cmd": "systemctl restart nginx"})
            assert held.status_code == 202, held.text
            approval = held.json()["approval"]["id"]

        server = restart(server, tmp_path, users(admin=entry(), op=entry("operator")))
        r = me(server, token)
        assert r.status_code == 401 and "admin2" in r.json()["error"]["message"]
        assert httpx.post(f"{server.url}/api/v1/auth/login",
                          json={"username": "admin2", "password": ADMIN_PASSWORD}).status_code == 401
        with server.client() as admin:
            tasks_before = admin.get("/api/v1/tasks", params={"created_by": "schedule:beat"}).json()["total"]
            shown = admin.get("/api/v1/schedules/beat").json()
            assert shown["owner"] == "admin2" and shown["enabled"]
            assert "'admin2'" in shown["suspended"] and "removed from the config" in shown["suspended"]
            local = cli("schedules", "show", "beat", config=server.config)
            assert "suspended: owner 'admin2' no longer exists" in local.stdout, local.stdout + local.stderr
            later = until(lambda: [f for f in fires(admin, "beat") if f["status"] == "suspended"][:3]
                          if len([f for f in fires(admin, "beat") if f["status"] == "suspended"]) >= 3 else None)
            assert all(f["task_id"] is None and "owner 'admin2'" in f["reason"] for f in later)
            assert admin.get("/api/v1/tasks", params={"created_by": "schedule:beat"}).json()["total"] == tasks_before
            assert len(audit(admin, "schedule.suspended")) == 1
            held_row = admin.get(f"/api/v1/approvals/{approval}").json()
            assert held_row["status"] == "cancelled" and "admin2" in held_row["reason"]
            assert admin.post(f"/api/v1/approvals/{approval}/approve").status_code == 409
            gone = audit(admin, "auth.user_disabled")
            assert gone[0]["target"] == "user admin2" and gone[0]["detail"]["revoked_tokens"] == 1
            assert gone[0]["detail"]["ended_sessions"] == 1
            assert gone[0]["detail"]["cancelled_approvals"] == [f"approval {approval}"]

        server = restart(server, tmp_path, everyone)
        assert me(server, token).status_code == 401  # not revived
        with server.client(server.login("admin2")) as c:
            assert c.get("/api/v1/auth/me").json()["username"] == "admin2"
            assert c.get("/api/v1/schedules/beat").json()["suspended"] is None
            until(lambda: fires(c, "beat")[0]["status"] == "success")
            assert len(audit(c, "schedule.reinstated")) == 1
    finally:
        server.stop()


def test_a_password_change_revokes_sessions_and_tokens_and_admins_manage_tokens_from_the_cli(tmp_path: Path) -> None:
    """A changed password (config + restart) ends the user's sessions and revokes their API tokens, unless
    their entry says keep_tokens_on_password_change. An admin lists everyone's tokens with
    `small-yi tokens list --server` (an operator may not) and revokes one locally with `small-yi tokens revoke`:
    it stops at once on the running server. `small-yi users sync` applies a removal without a restart."""
    server = start_server(write_config(tmp_path, users=users(admin=entry(), admin2=entry(), op=entry("operator")),
                                       extra=POLICY))
    try:
        tokens: dict[str, tuple[str, str]] = {}  # user -> (session, API token)
        for name in ("admin2", "op"):
            session = server.login(name)
            with server.client(session) as c:
                tokens[name] = (session, c.post("/api/v1/auth/tokens", json={"name": f"{name}-ci"}).json()["token"])
        server = restart(server, tmp_path, users(admin=entry(), admin2=entry(password_hash=NEW_HASH),
                                                 op=entry("operator", NEW_HASH, "keep_tokens_on_password_change: true")))
        assert me(server, tokens["admin2"][0]).status_code == 401 and me(server, tokens["admin2"][1]).status_code == 401
        assert me(server, tokens["op"][0]).status_code == 401 and me(server, tokens["op"][1]).status_code == 200
        new_session = server.login("admin2", NEW_PASSWORD)
        with server.client() as c:
            changed = {r["target"]: r["detail"] for r in audit(c, "auth.password_changed")}
        assert changed["user admin2"]["revoked_tokens"] == 1 and changed["user op"]["kept_tokens"] is True

        listed = cli("tokens", "list", "--server", server.url, "--token", server.login(), "--user", "admin2",
                     "-o", "json")
        assert listed.returncode == 0, listed.stderr
        assert [t["kind"] for t in json.loads(listed.stdout)["items"]] == ["session"]  # the new login only
        refused = cli("tokens", "list", "--server", server.url, "--token", tokens["op"][1])
        assert refused.returncode == 2 and "tokens.manage" in refused.stderr

        op_api = [t for t in json.loads(cli("tokens", "list", "--kind", "api", "--user", "op", "-o", "json",
                                            config=server.config).stdout)["items"]]
        revoked = cli("tokens", "revoke", str(op_api[0]["id"]), config=server.config)
        assert revoked.returncode == 0 and "revoked api" in revoked.stdout, revoked.stderr
        assert me(server, tokens["op"][1]).status_code == 401

        with server.client(new_session) as c:
            task = c.post("/api/v1/tasks", json={"target": {"hosts": ["local"]}, "cmd": "sleep 20"}).json()
        with connect(server, f"/api/v1/tasks/{task['id']}/stream", new_session) as ws:
            write_config(tmp_path, users=users(admin=entry(), op=entry("operator", NEW_HASH)), extra=POLICY)
            synced = cli("users", "sync", "-o", "json", config=server.config)
            assert synced.returncode == 0, synced.stderr
            assert {u["username"]: u["disabled"] for u in json.loads(synced.stdout)["items"]}["admin2"] is True
            code, reason, _ = closed_within(ws, 10)  # the running server follows at once: her socket closes
            assert code == 4401 and "'admin2' is disabled" in reason
        assert me(server, new_session).status_code == 401
        with server.client() as c:
            c.post(f"/api/v1/tasks/{task['id']}/cancel")
    finally:
        server.stop()
