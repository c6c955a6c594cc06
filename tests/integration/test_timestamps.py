"""Every timestamp the API returns and the CLI prints is ISO 8601 in UTC with ``Z``: milliseconds in JSON,
seconds in text; the CLI and the API give the same text for the same value.

A real server on SQLite with a sample of everything that carries a time (tasks and their output, results,
tokens, the audit trail, a schedule and its fires, a stored SOP and its run, a secret, a notification
channel, the RBAC report), read through the API (HTTP and the task stream) and through the CLI.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import Server, cli, start_server, task_stream, write_config

#: how a JSON timestamp looks (timestamps.iso)
JSON_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
#: how a text timestamp looks (timestamps.iso_seconds)
TEXT_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
#: anything that starts like a date: it must be one of the above, whole
DATE_LIKE = re.compile(r"\d{4}-\d\d-\d\d[^\s\"',;)]*")

SOP = "name: hello\nsteps:\n  - id: greet\n    type: exec\n    cmd: echo hello\n"


def _strings(doc: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, value) of every string in a JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(doc, str):
        yield path, doc


def _json_times(doc: Any, where: str) -> list[str]:
    """Every date-like string of ``doc``, checked to be a JSON timestamp; returns their paths."""
    found = []
    for path, value in _strings(doc):
        if re.match(r"\d{4}-\d\d-\d\d", value):
            assert JSON_TIME.fullmatch(value), f"{where}{path}: {value!r}"
            found.append(path)
    return found


def _text_times(text: str, where: str) -> list[str]:
    found = DATE_LIKE.findall(text)
    for value in found:
        assert TEXT_TIME.fullmatch(value), f"{where}: {value!r} in\n{text}"
    return found


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server, str]]:
    tmp = tmp_path_factory.mktemp("times")
    cfg = write_config(tmp)
    srv = start_server(cfg)
    token = srv.login()
    with srv.client(token) as c:
        assert cli("run", "--hosts", "local", "--cmd", "echo local", config=cfg).returncode == 0
        task = c.post("/api/v1/tasks", json={"target": {"hosts": ["local"]}, "cmd": "echo remote; exit 3"}).json()
        task_stream(srv, token, task["id"])  # until it ends
        assert c.post("/api/v1/auth/tokens", json={"name": "ci", "ttl": "720h"}).status_code == 201
        assert c.post("/api/v1/schedules", json={"name": "beat", "cron": "@every 1s", "kind": "command",
                                                 "command": "true", "target": {"hosts": ["local"]}}).status_code == 201
        assert c.post("/api/v1/sops", json={"name": "hello", "source": SOP}).status_code == 201
        run = c.post("/api/v1/sops/hello/runs", json={"target": {"hosts": ["local"]}})
        assert run.status_code == 201, run.text
        assert c.put("/api/v1/security/secrets/hook", json={"value": "s3cret", "kind": "webhook"}).status_code == 200
        assert c.post("/api/v1/notifications/channels", json={
            "name": "pager", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}).status_code == 201
        deadline = time.monotonic() + 30
        while not (c.get("/api/v1/schedules/beat/fires").json()["items"]
                   and c.get(f"/api/v1/sop-runs/{run.json()['id']}").json()["finished_at"]):
            assert time.monotonic() < deadline, "the schedule did not fire or the SOP run did not end"
            time.sleep(0.3)
        assert c.patch("/api/v1/schedules/beat", json={"cron": "@every 1h"}).status_code == 200  # no more fires
    yield cfg, srv, token
    srv.stop()


def test_every_api_timestamp_is_utc_with_z_and_milliseconds(setup: tuple[Path, Server, str]) -> None:
    """A sample of routes: every timestamp in their answers (and in the task stream) is 2026-...T...:...:SS.mmmZ."""
    _, srv, token = setup
    seen: dict[str, list[str]] = {}
    with srv.client(token) as c:
        tasks = c.get("/api/v1/tasks", params={"command": "echo remote"}).json()
        task_id = tasks["items"][0]["id"]
        run_id = c.get("/api/v1/sop-runs").json()["items"][0]["id"]
        for route in ("/api/v1/tasks", f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id}/results",
                      f"/api/v1/tasks/{task_id}/summary", f"/api/v1/tasks/{task_id}/output", "/api/v1/results",
                      "/api/v1/auth/tokens", "/api/v1/security/tokens", "/api/v1/audit", "/api/v1/schedules",
                      "/api/v1/schedules/beat", "/api/v1/schedules/beat/fires", "/api/v1/sops", "/api/v1/sops/hello",
                      "/api/v1/sop-runs", f"/api/v1/sop-runs/{run_id}", f"/api/v1/sop-runs/{run_id}/events",
                      "/api/v1/security/secrets", "/api/v1/notifications/channels", "/api/v1/security/rbac-report",
                      "/api/v1/audit/export"):
            r = c.get(route)
            assert r.status_code == 200, (route, r.text)
            docs = [json.loads(line) for line in r.text.splitlines()] if route.endswith("export") else [r.json()]
            seen[route] = [p for d in docs for p in _json_times(d, route)]
        status = c.post("/api/v1/overview/host-status", json={"hosts": ["local"]}).json()
        seen["host-status"] = _json_times(status, "host-status")
        created = c.post("/api/v1/tasks", json={"target": {"hosts": ["local"]}, "cmd": "true"}).json()
        seen["POST /tasks"] = _json_times(created, "POST /tasks")
        reloaded = c.post("/api/v1/admin/reload")
        assert reloaded.status_code == 200, reloaded.text
        seen["POST /admin/reload"] = _json_times(reloaded.json(), "POST /admin/reload")
    events = task_stream(srv, token, task_id)
    seen["stream"] = _json_times(events, "stream")
    assert all(JSON_TIME.fullmatch(e["at"]) for e in events) and len(events) >= 3
    empty = [route for route, paths in seen.items() if not paths]
    assert not empty, f"no timestamp checked in {empty}"  # the sample holds a time everywhere
    assert {".created_at", ".started_at", ".finished_at"} <= set(seen[f"/api/v1/tasks/{task_id}"])
    assert ".next_slot" in seen["/api/v1/schedules/beat"]


def test_the_cli_prints_the_same_timestamps_in_json_and_whole_in_text(setup: tuple[Path, Server, str]) -> None:
    """The CLI's JSON (in-process and --server) has the API's text for the same value; its tables and
    lines show seconds with Z, never a cut or offset time."""
    cfg, srv, token = setup
    remote = {"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": token}
    with srv.client(token) as c:
        api_task = c.get("/api/v1/tasks", params={"command": "echo remote"}).json()["items"][0]
    local = json.loads(cli("tasks", "show", str(api_task["id"]), "-o", "json", config=cfg).stdout)
    via_server = json.loads(cli("tasks", "show", str(api_task["id"]), "-o", "json", env=remote).stdout)
    for key in ("created_at", "started_at", "finished_at"):
        assert local["task"][key] == via_server["task"][key] == api_task[key], key
    json_commands = [("tasks", "list"), ("results",), ("audit", "search"), ("schedules", "show", "beat"),
                     ("sop", "runs"), ("tokens", "list"), ("secrets", "list"), ("run", "--hosts", "local", "--cmd", "true")]
    for args in json_commands:
        r = cli(*args, "-o", "json", config=cfg)
        assert r.returncode == 0, (args, r.stderr)
        assert _json_times(json.loads(r.stdout), " ".join(args)), args
    nd = cli("run", "--hosts", "local", "--cmd", "echo x", "-o", "ndjson", config=cfg)
    assert _json_times([json.loads(line) for line in nd.stdout.splitlines()], "run -o ndjson")
    text_commands = [("tasks", "list"), ("results",), ("tasks", "show", str(api_task["id"])), ("audit", "search"),
                     ("schedules", "show", "beat"), ("sop", "runs"), ("tokens", "list"), ("secrets", "list")]
    for args in text_commands:
        r = cli(*args, config=cfg)
        assert r.returncode == 0, (args, r.stderr)
        assert _text_times(r.stdout, " ".join(args)), (args, r.stdout)
    r = cli("tasks", "list", env=remote)
    assert api_task["created_at"][:19] + "Z" in r.stdout
