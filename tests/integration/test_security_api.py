"""Security through the API in-process: group-scoped RBAC, the command policy and approvals, the audit
trail of logins, calls and refusals, web hardening (CSRF, cookies, headers, logout everywhere), and
access that ends with its owner (tokens on logout-all, an admin's view of every token, approvals of a
disabled requester)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smallyi.app import create_app
from smallyi.approvals.withdraw import Withdrawal
from smallyi.auth.service import AuthService
from smallyi.config import parse_settings
from smallyi.execution.connectors.fake import FakeConnector
from support import ADMIN_HASH, ADMIN_PASSWORD, Server, starlette_test_client

TestClient = starlette_test_client()

CONFIG = """
database:
  source: {tmp}/s.db
secrets:
  key_file: {tmp}/master.key
auth:
  users:
    - {{username: admin, password_hash: "{h}"}}
    - {{username: op, password_hash: "{h}", role: operator, groups: [prod]}}
    - {{username: op2, password_hash: "{h}", role: operator, groups: [prod]}}
    - {{username: viewer, password_hash: "{h}", role: viewer}}
    - {{username: aud, password_hash: "{h}", role: auditor}}
policy:
  rules:
    - name: no-reboot
      deny: ["reboot"]
      reason: reboots go through the change board
    - name: restarts
      approve: ["systemctl restart *"]
      roles: [operator]
"""
FAKE = FakeConnector()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = parse_settings(CONFIG.format(tmp=tmp_path, h=ADMIN_HASH), base_dir=tmp_path)
    app = create_app(settings, connectors={"ssh": FakeConnector(), "local": FakeConnector()})
    with TestClient(app) as c:
        admin = auth(c, "admin")
        hosts = [{"name": "p1", "address": "10.0.0.1", "groups": ["prod"]},
                 {"name": "p2", "address": "10.0.0.2", "groups": ["prod", "web"]},
                 {"name": "d1", "address": "10.0.0.3", "groups": ["dev"]}]
        assert c.post("/api/v1/hosts", json=hosts, headers=admin).status_code == 200
        yield c


def auth(c: TestClient, user: str) -> dict[str, str]:
    r = c.post("/api/v1/auth/login", json={"username": user, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    c.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def audit(c: TestClient, **params: str) -> list[dict[str, object]]:
    r = c.get("/api/v1/audit", params={"limit": 1000, **params}, headers=auth(c, "aud"))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def run(c: TestClient, who: dict[str, str], target: dict[str, object], cmd: str = "uptime") -> object:
    return c.post("/api/v1/tasks", json={"target": target, "cmd": cmd}, headers=who)


def test_an_operator_runs_only_on_hosts_within_its_groups(client: TestClient) -> None:
    """An operator of prod may run on prod hosts; a target with any host outside prod is refused and audited."""
    op = auth(client, "op")
    assert run(client, op, {"group": "prod"}).status_code == 201
    r = run(client, op, {"hosts": ["p1", "d1"]})
    assert r.status_code == 403 and "d1" in r.json()["error"]["message"]
    assert run(client, op, {"group": "dev"}).status_code == 403
    denied = audit(client, action="access.denied", actor="op")
    assert denied and denied[0]["perm"] == "tasks.run" and denied[0]["result"] == "denied"


def test_a_viewer_cannot_run_and_an_auditor_cannot_edit_hosts(client: TestClient) -> None:
    """Roles: a viewer reads but cannot run; an auditor reads the audit trail but cannot change hosts."""
    viewer, aud = auth(client, "viewer"), auth(client, "aud")
    assert client.get("/api/v1/hosts", headers=viewer).status_code == 200
    r = run(client, viewer, {"group": "prod"})
    assert r.status_code == 403 and "tasks.run" in r.json()["error"]["message"]
    assert client.delete("/api/v1/hosts/p1", headers=aud).status_code == 403
    assert client.get("/api/v1/audit", headers=viewer).status_code == 403
    assert client.get("/api/v1/security/me", headers=auth(client, "op")).json()["groups"] == ["prod"]


def test_the_policy_refuses_before_anything_runs_and_says_why(client: TestClient) -> None:
    """A denied command answers 403 with the rule's reason, creates no task, and is audited with the command."""
    r = run(client, auth(client, "admin"), {"group": "prod"}, "uptime; sudo reboot")
    body = r.json()["error"]
    assert r.status_code == 403 and body["code"] == "policy_denied"
    assert "change board" in body["message"] and "reboot" in body["message"]
    assert client.get("/api/v1/tasks", headers=auth(client, "admin")).json()["total"] == 0
    rec = audit(client, action="policy.deny")[0]
    assert rec["actor"] == "admin" and rec["detail"]["command"] == "uptime; sudo reboot"  # type: ignore[index]


def test_a_dangerous_command_waits_for_a_second_person(client: TestClient) -> None:
    """An approve rule holds the command (202); the requester cannot approve it; another operator can,
    and the task then runs as the requester's."""
    op, op2 = auth(client, "op"), auth(client, "op2")
    r = run(client, op, {"group": "prod"}, "systemctl restart nginx")
    assert r.status_code == 202, r.text
    approval = r.json()["approval"]
    assert approval["status"] == "pending" and approval["requested_by"] == "op"
    assert client.post(f"/api/v1/approvals/{approval['id']}/approve", headers=op).status_code == 403
    ok = client.post(f"/api/v1/approvals/{approval['id']}/approve", headers=op2)
    assert ok.status_code == 200, ok.text
    task = client.get(f"/api/v1/tasks/{ok.json()['task_id']}", headers=op).json()
    assert task["created_by"] == "op" and task["command"] == "systemctl restart nginx"
    again = client.post(f"/api/v1/approvals/{approval['id']}/approve", headers=op2)
    assert again.status_code == 409
    assert [a["action"] for a in audit(client, action="policy.approval")][:1] == ["policy.approval_requested"]


def test_the_approvals_list_counts_every_match_not_the_page(client: TestClient) -> None:
    """GET /approvals with a small page answers the real number of matching requests in ``total``."""
    op = auth(client, "op")
    for unit in ("a", "b", "c"):
        assert run(client, op, {"group": "prod"}, f"systemctl restart {unit}").status_code == 202
    page = client.get("/api/v1/approvals", params={"limit": 2}, headers=op).json()
    assert len(page["items"]) == 2 and page["total"] == 3
    assert client.get("/api/v1/approvals", params={"limit": 1, "offset": 2, "status": "pending"},
                      headers=op).json()["total"] == 3
    assert client.get("/api/v1/approvals", params={"status": "approved"}, headers=op).json()["total"] == 0


def test_logins_calls_and_task_runs_are_audited_and_the_chain_verifies(client: TestClient) -> None:
    """Failed and good logins, a mutating call and a task's creation and end leave records; verify is clean."""
    assert client.post("/api/v1/auth/login", json={"username": "admin", "password": "nope"}).status_code == 401
    r = run(client, auth(client, "admin"), {"hosts": ["p1"]})
    import time

    time.sleep(0.5)
    actions = {(e["action"], e["result"]) for e in audit(client)}
    assert {("auth.login", "failed"), ("auth.login", "ok"), ("api.call", "ok"), ("task.create", "ok")} <= actions
    calls = audit(client, action="api.call", target="/api/v1/tasks")
    assert calls and calls[0]["client"] and calls[0]["actor"] == "admin"
    assert r.status_code == 201
    v = client.get("/api/v1/audit/verify", headers=auth(client, "aud")).json()
    assert v["ok"] and v["checked"] >= 5


def test_audit_export_gives_json_lines_and_csv(client: TestClient) -> None:
    """Export streams every record oldest first, as JSON lines or CSV with a header."""
    aud = auth(client, "aud")
    lines = client.get("/api/v1/audit/export", params={"format": "jsonl"}, headers=aud).text.splitlines()
    import json

    first = json.loads(lines[0])
    assert first["id"] == 1 and len(first["hash"]) == 64
    csv_text = client.get("/api/v1/audit/export", params={"format": "csv"}, headers=aud).text
    assert csv_text.startswith("id,at,actor,") and len(csv_text.splitlines()) >= len(lines)


def test_cookie_writes_need_the_csrf_header_and_responses_carry_security_headers(client: TestClient) -> None:
    """A write with only the session cookie is refused without X-SmallYi-CSRF; the cookie is HttpOnly and
    SameSite=Strict; API answers carry a Content-Security-Policy and nosniff."""
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.post("/api/v1/groups", json={"name": "g1"}).status_code == 401
    assert client.post("/api/v1/groups", json={"name": "g1"}, headers={"X-SmallYi-CSRF": "1"}).status_code == 201
    h = client.get("/api/v1/auth/me").headers
    assert "default-src 'none'" in h["content-security-policy"] and h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY" and h["cache-control"] == "no-store"


def test_logout_everywhere_ends_every_session(client: TestClient) -> None:
    """POST /auth/logout-all ends all of the user's login sessions, not only the caller's."""
    a, b = auth(client, "viewer"), auth(client, "viewer")
    r = client.post("/api/v1/auth/logout-all", headers=a)
    assert r.status_code == 200 and r.json()["ended_sessions"] >= 2
    assert client.get("/api/v1/auth/me", headers=b).status_code == 401


def test_a_cookie_websocket_from_another_site_is_refused(client: TestClient) -> None:
    """A WebSocket authenticated by the cookie alone must come from the server's own origin (no CSWSH)."""
    from starlette.websockets import WebSocketDisconnect

    client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    with pytest.raises(WebSocketDisconnect) as exc, client.websocket_connect(
            "/api/v1/tasks/1/stream", headers={"Origin": "https://evil.example"}):
        pass
    assert exc.value.code == 4401


def test_the_rbac_report_flags_least_privilege_findings(client: TestClient) -> None:
    """The report lists every user's permissions and flags the implicit admin and users who never logged in."""
    rep = client.get("/api/v1/security/rbac-report", headers=auth(client, "aud")).json()
    users = {row["user"]: row for row in rep["matrix"]}
    assert users["op"]["groups"] == ["prod"] and users["admin"]["groups"] == ["*"]
    kinds = {(f["kind"], f["subject"]) for f in rep["findings"]}
    assert ("implicit_admin", "admin") in kinds and ("inactive_user", "viewer") in kinds
    assert client.get("/api/v1/security/rbac-report", headers=auth(client, "op")).status_code == 403


def test_terminal_and_log_follow_are_scoped_to_the_granted_groups(client: TestClient) -> None:
    """An operator of prod cannot open a terminal on, nor follow logs of, a dev host: refused with 4403 and audited."""
    token = auth(client, "op")["Authorization"].split()[1]
    with client.websocket_connect("/api/v1/terminal/connect?host=d1", subprotocols=[f"bearer.{token}"]) as ws:
        msg = ws.receive_json()
        assert msg["type"] == "error" and "d1" in msg["message"]
    with client.websocket_connect("/api/v1/logs/stream?group=dev&file=/var/log/x",
                                  subprotocols=[f"bearer.{token}"]) as ws:
        assert ws.receive_json()["type"] == "error"
    kinds = [e["detail"]["kind"] for e in audit(client, action="access.denied", actor="op")]  # type: ignore[index]
    assert "terminal" in kinds and "logs" in kinds


def test_secrets_are_write_only_and_never_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """A stored secret is never in any API answer (not even to its writer) nor in a log line; the list shows
    its name and kind only."""
    import logging

    admin = auth(client, "admin")
    value = "s3cr3t-webhook-value-42"
    r = client.put("/api/v1/security/secrets/hook", json={"value": value, "kind": "webhook"}, headers=admin)
    assert r.status_code == 200 and value not in r.text and r.json()["kind"] == "webhook"
    listed = client.get("/api/v1/security/secrets", headers=admin)
    assert value not in listed.text and listed.json()["items"][0]["name"] == "hook"
    assert client.get("/api/v1/security/secrets", headers=auth(client, "op")).status_code == 403
    assert value not in client.get("/api/v1/audit/export", headers=auth(client, "aud")).text
    logging.getLogger("smallyi.test").warning("leaking %s now", value)
    assert value not in caplog.text and "leaking *** now" in caplog.text


def test_the_start_up_log_says_an_omitted_role_means_admin(server: Server) -> None:
    """A config user without a role is admin, and the server's start-up log says so."""
    with server.client() as c:
        assert c.get("/api/v1/auth/me").json()["role"] == "admin"
    assert "user admin has no role in the config: admin" in server.output()


def resync(c: TestClient, tmp_path: Path, *, drop: str = "", regroup: tuple[str, str] = ("", "")) -> None:
    """Sync the users table to CONFIG without user ``drop`` and with user ``regroup[0]`` granted over group
    ``regroup[1]`` instead of prod, as a restart with that config does (the same code path)."""
    lines = []
    for line in CONFIG.format(tmp=tmp_path, h=ADMIN_HASH).splitlines():
        if drop and f"username: {drop}," in line:
            continue
        if regroup[0] and f"username: {regroup[0]}," in line:
            line = line.replace("groups: [prod]", f"groups: [{regroup[1]}]")
        lines.append(line)
    text = "\n".join(lines)
    rt = c.app.state.smallyi  # type: ignore[attr-defined]
    sync = AuthService(rt.db, parse_settings(text, base_dir=tmp_path).auth, roles=rt.roles, audit=rt.audit,
                       withdraw=Withdrawal(rt.db))
    c.portal.call(sync.sync_config_users)  # type: ignore[union-attr]


def api_token(c: TestClient, who: dict[str, str], name: str = "ci") -> tuple[int, dict[str, str]]:
    r = c.post("/api/v1/auth/tokens", json={"name": name}, headers=who)
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), {"Authorization": f"Bearer {r.json()['token']}"}


def test_logout_everywhere_revokes_api_tokens_unless_asked_to_keep_them(client: TestClient) -> None:
    """"Log out everywhere" ends every session and revokes the user's API tokens; with keep_tokens the API
    tokens stay and only the sessions end. The answer says how many of each."""
    a, b = auth(client, "viewer"), auth(client, "viewer")
    _, token = api_token(client, a)
    r = client.post("/api/v1/auth/logout-all", headers=a)
    assert r.status_code == 200 and r.json() == {"ended_sessions": 2, "revoked_tokens": 1}
    assert "Max-Age=0" in r.headers.get("set-cookie", "")  # the caller's session cookie is cleared too
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401
    assert client.get("/api/v1/auth/me", headers=b).status_code == 401
    c = auth(client, "viewer")
    _, kept = api_token(client, c, "kept")
    r = client.post("/api/v1/auth/logout-all", json={"keep_tokens": True}, headers=c)
    assert r.json() == {"ended_sessions": 1, "revoked_tokens": 0}
    assert client.get("/api/v1/auth/me", headers=kept).status_code == 200
    assert client.get("/api/v1/auth/me", headers=c).status_code == 401


def test_an_admin_lists_and_revokes_every_users_tokens(client: TestClient) -> None:
    """An admin lists any user's tokens and sessions (never their text) and revokes one: it stops at once,
    and the revocation is audited with whose token it was. Others may not (tokens.manage)."""
    op = auth(client, "op")
    token_id, token = api_token(client, op)
    admin = auth(client, "admin")
    listed = client.get("/api/v1/security/tokens", params={"user": "op", "kind": "api"}, headers=admin)
    assert listed.status_code == 200 and listed.json()["total"] == 1
    item = listed.json()["items"][0]
    assert (item["id"], item["user"], item["kind"], item["name"]) == (token_id, "op", "api", "ci")
    assert "token" not in item and "hash" not in str(item)
    everyone = client.get("/api/v1/security/tokens", headers=admin).json()["items"]
    assert {("op", "session"), ("op", "api"), ("admin", "session")} <= {(t["user"], t["kind"]) for t in everyone}
    assert client.get("/api/v1/security/tokens", headers=op).status_code == 403
    assert client.delete(f"/api/v1/security/tokens/{token_id}", headers=op).status_code == 403
    r = client.delete(f"/api/v1/security/tokens/{token_id}", headers=admin)
    assert r.status_code == 200 and r.json()["user"] == "op"
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401
    assert client.delete(f"/api/v1/security/tokens/{token_id}", headers=admin).status_code == 404
    rec = audit(client, action="auth.token_revoke")[0]
    assert rec["actor"] == "admin" and rec["target"] == "user op" and rec["detail"]["token"] == token_id  # type: ignore[index]


def test_a_removed_requesters_approvals_are_cancelled_and_cannot_be_given(client: TestClient, tmp_path: Path) -> None:
    """op asks for a held command and is then removed from the config: their API token stops, the pending
    approval is cancelled naming them (audited with the disablement), and approving it is refused: nothing runs."""
    op = auth(client, "op")
    _, token = api_token(client, op)
    approval = run(client, op, {"group": "prod"}, "systemctl restart nginx").json()["approval"]  # type: ignore[attr-defined]
    resync(client, tmp_path, drop="op")
    r = client.get("/api/v1/auth/me", headers=token)
    assert r.status_code == 401 and "disabled" in r.json()["error"]["message"]
    row = client.get(f"/api/v1/approvals/{approval['id']}", headers=auth(client, "op2")).json()
    assert row["status"] == "cancelled" and "op" in row["reason"] and "removed from the config" in row["reason"]
    assert client.post(f"/api/v1/approvals/{approval['id']}/approve", headers=auth(client, "op2")).status_code == 409
    assert client.get("/api/v1/tasks", headers=auth(client, "admin")).json()["total"] == 0
    rec = audit(client, action="auth.user_disabled")[0]
    assert rec["target"] == "user op" and rec["detail"]["revoked_tokens"] == 1  # type: ignore[index]
    assert rec["detail"]["cancelled_approvals"] == [f"approval {approval['id']}"]  # type: ignore[index]


def test_an_approved_task_runs_with_the_requesters_rights_now(client: TestClient, tmp_path: Path) -> None:
    """Approval runs the task as the requester with the rights they hold when it is approved: op, moved
    from prod to dev since asking, cannot have a prod command approved."""
    approval = run(client, auth(client, "op"), {"group": "prod"}, "systemctl restart nginx").json()["approval"]  # type: ignore[attr-defined]
    resync(client, tmp_path, regroup=("op", "dev"))
    r = client.post(f"/api/v1/approvals/{approval['id']}/approve", headers=auth(client, "op2"))
    assert r.status_code == 403 and "requester may no longer run" in r.json()["error"]["message"]
    assert client.get("/api/v1/tasks", headers=auth(client, "admin")).json()["total"] == 0
