"""SOP variables through the API in-process: typed values checked before a run (runs and schedules), the
command policy judging a step's command by its values, and a stored SOP that a newer rule refuses."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smallyi.app import create_app
from smallyi.config import parse_settings
from smallyi.execution.connectors.fake import FakeConnector
from support import ADMIN_HASH, ADMIN_PASSWORD, starlette_test_client

TestClient = starlette_test_client()

CONFIG = """
database:
  source: {tmp}/s.db
secrets:
  key_file: {tmp}/master.key
auth:
  users:
    - {{username: admin, password_hash: "{h}"}}
    - {{username: op, password_hash: "{h}", role: operator, groups: [web]}}
policy:
  rules:
    - name: destructive
      deny: ["rm -rf /"]
      reason: destructive commands are not run from small-yi
"""
SOP = """\
name: clean
vars:
  dir: /tmp/cache
  keep: {type: int, default: 3, min: 0, max: 30}
  env: {type: enum, values: [staging, prod]}
steps:
  - id: clean
    type: exec
    target: {group: web}
    cmd: "rm -rf {{ .vars.dir }}; echo keep $(( {{ .vars.keep }} )) in {{ .vars.env }}"
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    settings = parse_settings(CONFIG.format(tmp=tmp_path, h=ADMIN_HASH), base_dir=tmp_path)
    app = create_app(settings, connectors={"ssh": FakeConnector(), "local": FakeConnector()})
    with TestClient(app) as c:
        r = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        c.cookies.clear()
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        assert c.post("/api/v1/hosts", json=[{"name": "w1", "address": "10.0.0.1", "groups": ["web"]}]).status_code == 200
        assert c.post("/api/v1/sops", json={"name": "clean", "source": SOP}).status_code == 201
        yield c


def finished(c: Any, run_id: int) -> dict[str, Any]:
    for _ in range(100):
        run: dict[str, Any] = c.get(f"/api/v1/sop-runs/{run_id}").json()
        if run["status"] not in ("running", "pending"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"SOP run {run_id} did not finish")


def test_typed_values_are_checked_before_a_run_or_a_schedule(client: Any) -> None:
    """A value that does not fit its type, or a missing required one, is a 422 naming the variable; nothing
    is recorded. GET shows each variable's type."""
    got = client.get("/api/v1/sops/clean").json()
    assert got["vars"] == {"dir": "/tmp/cache", "keep": 3, "env": None}
    assert got["var_types"]["keep"] == {"type": "int", "required": False, "default": 3, "min": 0, "max": 30}
    assert got["var_types"]["env"] == {"type": "enum", "required": True, "values": ["staging", "prod"]}
    for body, message in [({"vars": {"env": "prod", "keep": "3; reboot"}}, "vars.keep: '3; reboot' is not a whole"),
                          ({"vars": {"env": "dev"}}, "vars.env: 'dev' is not one of staging, prod"),
                          ({"vars": {}}, "vars.env: required")]:
        r = client.post("/api/v1/sops/clean/runs", json=body)
        assert r.status_code == 422 and message in r.json()["error"]["message"], r.text
    assert client.get("/api/v1/sop-runs").json()["total"] == 0
    schedule = {"name": "nightly", "cron": "0 3 * * *", "kind": "sop", "sop_name": "clean",
                "vars": {"env": "prod", "keep": "many"}}
    r = client.post("/api/v1/schedules", json=schedule)
    assert r.status_code == 422 and "vars.keep: 'many' is not a whole number" in r.json()["error"]["message"]
    assert client.post("/api/v1/schedules", json={**schedule, "vars": {"env": "prod", "keep": 5}}).status_code == 201


def test_the_policy_judges_a_step_by_its_values(client: Any) -> None:
    """`rm -rf {{ .vars.dir }}` passes a deny rule on `rm -rf /` with dir=/tmp/cache, and is refused with dir=/
    (the value is data in the command, but the policy reads the pinned value): no task for the refused one."""
    r = client.post("/api/v1/sops/clean/runs", json={"vars": {"env": "prod"}})
    run = finished(client, r.json()["id"])
    assert run["status"] == "success", run
    task = client.get(f"/api/v1/tasks/{run['steps'][0]['task_ids'][0]}").json()
    assert task["command"].startswith("export SY_V_dir='/tmp/cache' SY_V_keep='3' SY_V_env='prod'; readonly ")
    r = client.post("/api/v1/sops/clean/runs", json={"vars": {"env": "prod", "dir": "/"}})
    run = finished(client, r.json()["id"])
    step = run["steps"][0]
    assert run["status"] == "failed" and "destructive commands are not run" in step["reason"] and not step["task_ids"]


def test_a_stored_sop_that_a_newer_rule_refuses_is_shown_with_its_problems(client: Any, tmp_path: Path) -> None:
    """A SOP stored before a rule it breaks (here: raw on an untyped value) can still be read and fixed: GET
    shows its YAML and problems, no plan; running it is refused naming the step and field."""
    bad = SOP.replace("in {{ .vars.env }}", "in {{ .vars.dir | raw }}")
    with sqlite3.connect(tmp_path / "s.db") as db:  # as an earlier version stored it
        db.execute("UPDATE sops SET source = ? WHERE name = 'clean'", (bad,))
    got = client.get("/api/v1/sops/clean").json()
    assert got["source"] == bad and got["plan"] is None
    assert any(p["step"] == "clean" and p["field"] == "cmd" and "raw" in p["message"] for p in got["problems"])
    r = client.post("/api/v1/sops/clean/runs", json={"vars": {"env": "prod"}})
    assert r.status_code == 422 and "raw inserts a value as shell code" in r.text
    fixed = client.put("/api/v1/sops/clean", json={"source": SOP})
    assert fixed.status_code == 200 and client.get("/api/v1/sops/clean").json()["plan"] is not None
