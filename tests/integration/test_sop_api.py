"""SOPs, runs, approvals, schedules and notification channels through a real server's API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from test_notify import Receiver

from support import ADMIN_HASH, Server, start_server, write_config

USERS = "".join(f"    - username: {u}\n      password_hash: \"{ADMIN_HASH}\"\n      role: {r}\n"
                for u, r in (("admin", "admin"), ("bob", "operator"), ("vic", "viewer")))

SOP = """\
name: hello
description: says hello, then checks the disk
vars: {who: world}
steps:
  - id: greet
    type: exec
    cmd: "echo hello {{ .vars.who }}"
  - id: check_disk
    type: exec
    cmd: "df -h | grep '/$'"
    timeout: 10
"""

GATED = """\
steps:
  - {id: gate, type: approval, message: "go ahead?"}
  - {id: act, type: exec, cmd: "echo approved by {{ .steps.gate.decided_by }}"}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path, users=f"auth:\n  users:\n{USERS}")


@pytest.fixture
def server(cfg: Path) -> Iterator[Server]:
    srv = start_server(cfg)
    yield srv
    srv.stop()


def client(server: Server, user: str = "admin") -> httpx.Client:
    return server.client(server.login(user))


def wait_run(c: httpx.Client, run_id: int, *, until: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = c.get(f"/api/v1/sop-runs/{run_id}").json()
        if until(run):
            return dict(run)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never got there: {run}")


def test_store_validate_version_delete(server: Server) -> None:
    """A bad SOP is refused with every problem; a good one is stored, versioned, planned and deleted."""
    with client(server) as c:
        bad = c.post("/api/v1/sops", json={"name": "bad", "source": "steps:\n  - {id: a, type: exec}\n"})
        assert bad.status_code == 422
        err = bad.json()["error"]
        assert err["code"] == "invalid_sop" and err["problems"][0] == {
            "line": 2, "step": "a", "field": "cmd", "message": "type exec needs field 'cmd'", "severity": "error"}
        assert c.get("/api/v1/sops").json()["total"] == 0
        r = c.post("/api/v1/sops", json={"name": "hello", "source": SOP})
        assert r.status_code == 201 and r.json()["version"] == 1
        assert c.post("/api/v1/sops", json={"name": "hello", "source": SOP}).status_code == 409
        got = c.get("/api/v1/sops/hello").json()
        assert got["source"] == SOP and got["plan"]["waves"] == [["greet"], ["check_disk"]]
        assert got["plan"]["steps"][1] == {"id": "check_disk", "type": "exec", "does": "df -h | grep '/$'",
                                           "needs": ["greet"], "when": None, "handler": False}
        assert c.put("/api/v1/sops/hello", json={"source": SOP.replace("world", "ops")}).json()["version"] == 2
        listed = c.get("/api/v1/sops").json()["items"]
        assert [s["name"] for s in listed] == ["hello"] and "source" not in listed[0]
        assert listed[0]["last_run"] is None
        v = c.post("/api/v1/sops/validate", json={"source": "steps:\n  - {id: a, type: wait, duration: 1, x: 1}\n",
                                                  "strict": True}).json()
        assert v["valid"] is False and v["problems"][0]["field"] == "x"
        assert c.delete("/api/v1/sops/hello").status_code == 204
        assert c.get("/api/v1/sops/hello").status_code == 404


def test_run_follow_and_record(server: Server) -> None:
    """A stored SOP runs on a target; its events stream live to the end; each step's task is in the archive."""
    with client(server) as c:
        c.post("/api/v1/sops", json={"name": "hello", "source": SOP}).raise_for_status()
        r = c.post("/api/v1/sops/hello/runs", json={"vars": {"who": "api"}, "target": {"hosts": ["local"]}})
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["status"] == "running" and run["started_by"] == "admin" and run["trigger"] == "api"
        token = c.headers["Authorization"].split()[1]
        url = server.url.replace("http", "ws") + f"/api/v1/sop-runs/{run['id']}/stream?after=0"
        events: list[dict[str, Any]] = []
        end: dict[str, Any] = {}
        with ws_client.connect(url, subprotocols=[f"bearer.{token}"], open_timeout=10) as ws:  # type: ignore[list-item]
            for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "end":
                    end = msg["run"]
                    break
                events.extend(msg["events"])
        assert end["status"] == "success"
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        kinds = [(e["kind"], e["step"]) for e in events]
        assert kinds[0] == ("run.start", None) and kinds[-1] == ("run.finish", None)
        assert kinds.index(("step.finish", "greet")) < kinds.index(("step.start", "check_disk"))
        detail = c.get(f"/api/v1/sop-runs/{run['id']}").json()
        greet = detail["steps"][0]
        assert greet["status"] == "success" and greet["result"]["output"] == "hello api"
        task = c.get(f"/api/v1/tasks/{greet['task_ids'][0]}").json()
        # the archived command is what ran: the value pinned on its first line, referenced in the text
        assert task["command"] == "export SY_V_who='api'; readonly SY_V_who\necho hello \"${SY_V_who}\""
        assert task["created_by"] == f"sop:{run['id']}:admin"
        last = c.get("/api/v1/sops").json()["items"][0]["last_run"]
        assert last["id"] == run["id"] and last["status"] == "success" and last["started_by"] == "admin"
        got = c.get("/api/v1/sops/hello").json()
        assert got["vars"] == {"who": "world"} and got["environments"] == []
        assert got["var_types"] == {"who": {"type": "any", "required": False, "default": "world"}}
        again = c.get(f"/api/v1/sop-runs/{run['id']}/events?after=3").json()["items"]
        assert again[0]["seq"] == 4


def test_dry_run_and_inline_rights(server: Server) -> None:
    """A dry run answers the plan with hosts and commands; inline YAML needs sop.write (a viewer is refused)."""
    body = {"source": SOP, "dry_run": True, "target": {"group": "local"}}
    with client(server) as c:
        r = c.post("/api/v1/sop-runs", json=body)
        assert r.status_code == 201
        assert r.json()["steps"][0]["command"] == "export SY_V_who='world'; readonly SY_V_who\necho hello \"${SY_V_who}\""
        assert c.get("/api/v1/sop-runs").json()["total"] == 0
    with client(server, "vic") as c:
        assert c.post("/api/v1/sop-runs", json=body).status_code == 403
        assert c.get("/api/v1/sop-runs").status_code == 200
    with client(server, "bob") as c:
        assert c.post("/api/v1/sop-runs", json=body).status_code == 403  # operators run stored SOPs only


def test_approval_waits_across_a_restart(cfg: Path) -> None:
    """A run waiting for approval survives the server stopping; after the restart bob approves and it finishes.

    (A stopping server leaves runs that wait for a person alone, so the new server finds the run's
    process gone and resumes it, as after a crash.)
    """
    first = start_server(cfg)
    try:
        with client(first) as c:
            c.post("/api/v1/sops", json={"name": "gated", "source": GATED}).raise_for_status()
            run_id = c.post("/api/v1/sops/gated/runs", json={"target": {"hosts": ["local"]}}).json()["id"]
            wait_run(c, run_id, until=lambda r: r["steps"][0]["status"] == "waiting")
            pending = c.get("/api/v1/sop-approvals?status=pending").json()["items"]
            assert [(a["run_id"], a["step_id"]) for a in pending] == [(run_id, "gate")]
            denied = c.post(f"/api/v1/sop-runs/{run_id}/steps/gate/approve")
            assert denied.status_code == 403 and "started the run" in denied.json()["error"]["message"]
    finally:
        first.stop()
    second = start_server(cfg)
    try:
        with client(second, "bob") as c:
            assert c.get(f"/api/v1/sop-runs/{run_id}").json()["status"] == "running"
            r = c.post(f"/api/v1/sop-runs/{run_id}/steps/gate/approve", json={"comment": "fine"})
            assert r.status_code == 200 and r.json()["status"] == "approved", r.text
            run = wait_run(c, run_id, until=lambda r: r["status"] != "running")
        assert run["status"] == "success"
        assert run["steps"][1]["result"]["output"] == "approved by bob"
        assert run["approvals"][0]["decided_by"] == "bob" and run["approvals"][0]["comment"] == "fine"
        with client(second) as c2:
            kinds = [e["kind"] for e in c2.get(f"/api/v1/sop-runs/{run_id}/events").json()["items"]]
        assert "run.resume" in kinds and kinds[-1] == "run.finish"
        assert len(run["approvals"]) == 1  # the same approval, not asked for again
    finally:
        second.stop()


def test_schedules_api(server: Server) -> None:
    """Schedules are created with their next slot, refused with the bad field named, paused, listed and removed."""
    with client(server) as c:
        body = {"name": "uptime", "cron": "*/5 * * * *", "timezone": "Asia/Shanghai", "kind": "command",
                "command": "uptime", "target": {"hosts": ["local"]}, "timeout": "30s",
                "notify": {"channels": ["ops"], "on": ["failure"]}}
        r = c.post("/api/v1/schedules", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["next_slot"] is not None and made["timeout"] == 30 and made["missed"] == "skip"
        bad = c.post("/api/v1/schedules", json={**body, "name": "x", "cron": "* * *"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "cron"
        assert c.post("/api/v1/schedules", json={**body, "name": "y", "target": {"hosts": ["nope"]}}).status_code == 404
        paused = c.patch("/api/v1/schedules/uptime", json={"enabled": False}).json()
        assert paused["enabled"] is False and paused["next_slot"] is None
        listed = c.get("/api/v1/schedules").json()
        assert listed["total"] == 1 and listed["items"][0]["last_fire"] is None
        assert c.get("/api/v1/schedules/uptime/fires").json() == {"items": [], "total": 0}
        assert c.delete("/api/v1/schedules/uptime").status_code == 204
    with client(server, "bob") as c:
        assert c.post("/api/v1/schedules", json=body).status_code == 403


def test_notification_channels_api(server: Server) -> None:
    """Channels are added write-only, tested for real, and every delivery is listed."""
    receiver = Receiver()
    try:
        with client(server) as c:
            r = c.post("/api/v1/notifications/channels",
                       json={"name": "ops", "kind": "wecom", "url": f"{receiver.url}/send?key=SECRETKEY"})
            assert r.status_code == 201 and "SECRETKEY" not in r.text and r.json()["url"].endswith("/...")
            assert c.post("/api/v1/notifications/channels",
                          json={"name": "ops", "kind": "wecom", "url": "http://x"}).status_code == 409
            assert c.post("/api/v1/notifications/channels",
                          json={"name": "bad", "kind": "pager", "url": "http://x"}).status_code == 422
            d = c.post("/api/v1/notifications/channels/ops/test").json()
            assert d["status"] == "sent" and receiver.seen[0].query == {"key": ["SECRETKEY"]}
            assert "test message" in receiver.seen[0].json()["markdown"]["content"]
            listed = c.get("/api/v1/notifications/deliveries").json()["items"]
            assert listed[0]["channel"] == "ops" and listed[0]["status"] == "sent"
            assert "SECRETKEY" not in c.get("/api/v1/notifications/channels").text
            assert c.delete("/api/v1/notifications/channels/ops").status_code == 204
        with client(server, "bob") as c:
            assert c.get("/api/v1/notifications/channels").status_code == 200
            assert c.post("/api/v1/notifications/channels/ops/test").status_code == 403
    finally:
        receiver.close()


def test_a_step_the_policy_holds_waits_for_approval_and_runs_what_was_judged(tmp_path: Path) -> None:
    """An approve rule holds a template step's write and an exec step's command: the step waits (no task, no
    file) with a command approval naming its run; the starter cannot approve it; another admin's approval
    lets the step write the file itself (approving runs no bare ``cat > DEST`` task); a rejection fails
    the step and nothing runs."""
    held = tmp_path / "held"
    held.mkdir()
    users = USERS + f"    - username: ann\n      password_hash: \"{ADMIN_HASH}\"\n      role: admin\n"
    cfg = write_config(tmp_path, users=f"auth:\n  users:\n{users}",
                       extra=f"policy:\n  rules:\n    - name: held\n      approve: ['> {held}/*', 'touch *']\n"
                             "      reason: files under held/ change with a second pair of eyes\n")
    source = (f"steps:\n  - {{id: w, type: template, dest: {held}/app.conf, content: 'v={{{{ .host.name }}}}'}}\n"
              f"  - {{id: t, type: exec, cmd: 'touch {held}/marker'}}\n")
    srv = start_server(cfg)
    try:
        with client(srv) as admin, client(srv, "ann") as ann:
            r = admin.post("/api/v1/sop-runs", json={"source": source, "target": {"group": "local"}})
            assert r.status_code == 201, r.text
            run_id = r.json()["id"]

            def pending(kind: str) -> dict[str, Any]:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    items = [a for a in admin.get("/api/v1/approvals?status=pending").json()["items"]
                             if a["kind"] == kind]
                    if items:
                        return dict(items[0])
                    time.sleep(0.2)
                raise AssertionError(f"no pending {kind} approval")

            a = pending("sop-file")
            assert a["client"] == f"sop-run:{run_id}" and a["person"] == "admin"
            assert "> " in a["command"] and "second pair of eyes" in a["rule"]
            run = wait_run(admin, run_id, until=lambda r: r["steps"][0]["status"] == "waiting")
            assert not (held / "app.conf").exists()
            mine = admin.post(f"/api/v1/approvals/{a['id']}/approve")
            assert mine.status_code == 403 and "own request" in mine.json()["error"]["message"]

            ok = ann.post(f"/api/v1/approvals/{a['id']}/approve")
            assert ok.status_code == 200 and ok.json()["status"] == "approved" and ok.json()["task_id"] is None
            b = pending("sop-command")
            assert b["command"] == f"touch {held}/marker"
            assert (held / "app.conf").read_text() == "v=local"
            assert ann.post(f"/api/v1/approvals/{b['id']}/reject").status_code == 200
            run = wait_run(admin, run_id, until=lambda r: r["status"] != "running")
            assert admin.get("/api/v1/tasks").json()["total"] == 0  # neither approval ran a task of its own
        steps = {s["id"]: s for s in run["steps"]}
        assert run["status"] == "failed" and steps["w"]["status"] == "success"
        assert steps["t"]["status"] == "failed" and "rejected by ann" in steps["t"]["reason"]
        assert not (held / "marker").exists()
    finally:
        srv.stop()
