"""The SOP routes answer exactly what their response models describe, on the paths the other SOP tests
do not take: keys present only sometimes stay absent (the CLI tests ``"hosts" in item``), a stored SOP
that no longer validates, tickets, a run's partial target. Strict answers (the suite's setting) turn any
key a model misses into a 500."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from smallyi.app import create_app
from smallyi.config import parse_settings
from smallyi.execution.connectors.fake import FakeConnector
from support import ADMIN_HASH, ADMIN_PASSWORD, starlette_test_client

TYPED = """\
vars:
  count: {type: int, default: 3, min: 1, max: 10}
  env: {type: enum, values: [staging, prod]}
  tag: {type: pattern, pattern: '[a-z]+', default: latest}
  port: 80
steps:
  - {id: pause, type: wait, duration: 1s}
  - {id: work, type: exec, cmd: "echo {{ .vars.count }}", timeout: 5, on_failure: {run: cleanup}}
  - {id: cleanup, type: exec, cmd: "echo cleanup", target: {hosts: [local]}}
"""


def _cfg(tmp: Path) -> str:
    return (f"database:\n  source: {tmp}/a.db\nsecrets:\n  key_file: {tmp}/k\nauth:\n  users:\n"
            f"    - username: admin\n      password_hash: \"{ADMIN_HASH}\"\n")


def _wait(c: Any, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run: dict[str, Any] = c.get(f"/api/v1/sop-runs/{run_id}").json()
        if run["status"] != "running":
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def _app(tmp: Path) -> Any:
    return create_app(parse_settings(_cfg(tmp), base_dir=tmp), connectors={"ssh": FakeConnector(),
                                                                           "local": FakeConnector()})


def test_sop_answers_keep_their_shapes(tmp_path: Path) -> None:
    with starlette_test_client()(_app(tmp_path)) as c:
        token = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"

        bad = c.post("/api/v1/sops", json={"name": "bad", "source": "steps: [{id: x, type: nope}]"})
        assert bad.status_code == 422 and bad.json()["error"]["problems"][0]["severity"] == "error", bad.text

        saved = c.post("/api/v1/sops", json={"name": "typed", "source": TYPED})
        assert saved.status_code == 201 and saved.json()["warnings"] == [], saved.text
        got = c.get("/api/v1/sops/typed").json()
        assert got["var_types"] == {  # each declaration's keys as described, none added
            "count": {"type": "int", "required": False, "default": 3, "min": 1, "max": 10},
            "env": {"type": "enum", "required": True, "values": ["staging", "prod"]},
            "tag": {"type": "pattern", "required": False, "default": "latest", "pattern": "[a-z]+"},
            "port": {"type": "int", "required": False, "default": 80}}
        assert "problems" not in got and got["plan"]["steps"][2] == {
            "id": "cleanup", "type": "exec", "does": "echo cleanup", "needs": [], "when": None, "handler": True}

        dry = c.post("/api/v1/sops/typed/runs", json={"dry_run": True, "vars": {"env": "prod"}})
        assert dry.status_code == 201, dry.text
        pause, work = dry.json()["steps"]
        assert "hosts" not in pause and "note" not in pause and "command" not in pause  # not a host step
        assert work["hosts"] == [] and work["note"].startswith("no target") and "command" not in work
        assert work["timeout"] == 5.0 and work["on_failure"] == "run"
        assert dry.json()["handlers"][0]["hosts"] == ["local"] and "command" in dry.json()["handlers"][0]

        run = c.post("/api/v1/sops/typed/runs", json={"vars": {"env": "prod"}, "target": {"hosts": ["local"]}})
        assert run.status_code == 201 and run.json()["target"] == {"hosts": ["local"]}, run.text  # no group/labels
        detail = _wait(c, run.json()["id"])
        assert detail["target"] == {"hosts": ["local"]} and [s["id"] for s in detail["steps"]] == [
            "pause", "work", "cleanup"]
        listed = c.get("/api/v1/sop-runs").json()["items"][0]
        assert listed["target"] == {"hosts": ["local"]} and "steps" not in listed
        assert c.get("/api/v1/sops").json()["items"][0]["last_run"]["id"] == detail["id"]
        events = c.get(f"/api/v1/sop-runs/{detail['id']}/events").json()
        assert events["total"] == len(events["items"]) > 0
        gone = c.post(f"/api/v1/sop-runs/{detail['id']}/cancel")
        assert gone.status_code == 409 and gone.json()["error"]["code"], gone.text

    # a stored SOP a newer rule refuses, and a ticket opened by a run: written as they would be found
    db = sqlite3.connect(tmp_path / "a.db")
    with db:
        db.execute("UPDATE sops SET source = ? WHERE name = 'typed'", ("steps: [{id: x, type: nope}]",))
        db.execute("INSERT INTO tickets (run_id, step_id, template, status, external_id, url, requester, sla, hosts, "
                   "title, error, response, created_at) VALUES (NULL, '', 'incident', 'failed', '', '', 'admin', '', "
                   "?, 'disk full', 'refused: 500', '{}', '2026-12-07 18:30:00.000000')", (json.dumps(["web-1"]),))
    db.close()
    with starlette_test_client()(_app(tmp_path)) as c:
        token = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"
        stale = c.get("/api/v1/sops/typed").json()
        assert stale["plan"] is None and stale["var_types"] == {} and stale["problems"][0]["message"], stale
        tickets = c.get("/api/v1/tickets").json()
        assert tickets["items"] == [{
            "id": 1, "run_id": None, "step_id": None, "template": "incident", "status": "failed", "ticket_id": None,
            "url": None, "requester": "admin", "sla": "", "hosts": ["web-1"], "title": "disk full",
            "error": "refused: 500", "created_at": "2026-12-07T18:30:00.000Z"}]
        assert c.get("/api/v1/sop-approvals").json() == {"items": [], "total": 0}
