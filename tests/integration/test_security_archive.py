"""The task archive is read per group, through a real server on the OpenSSH fleet: an operator of group A
never sees group B's results or output lines, by any read path (list, detail, results, output, the
WebSocket stream live and replayed, the CLI with --server); admins and auditors see everything."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosedError

from smallyi.testing import Fleet
from support import ADMIN_HASH, Server, cli, start_server, task_stream, write_config

pytestmark = pytest.mark.fleet

USERS = f"""auth:
  users:
    - {{username: admin, password_hash: "{ADMIN_HASH}"}}
    - {{username: opa, password_hash: "{ADMIN_HASH}", role: operator, groups: [ga]}}
    - {{username: aud, password_hash: "{ADMIN_HASH}", role: auditor}}
"""


@dataclass
class Archive:
    server: Server
    config: Path
    a: str  # host in group ga
    b: str  # host in group gb
    task_a: int
    task_b: int
    task_ab: int

    def get(self, user: str, path: str, **params: Any) -> httpx.Response:
        with self.server.client(self.server.login(user)) as c:
            return c.get(f"/api/v1{path}", params=params)


def _wait(c: httpx.Client, task_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        t = c.get(f"/api/v1/tasks/{task_id}").json()
        if t["status"] not in ("queued", "running"):
            return dict(t)
        assert time.monotonic() < deadline, t
        time.sleep(0.2)


def _submit(c: httpx.Client, hosts: list[str], cmd: str) -> int:
    r = c.post("/api/v1/tasks", json={"target": {"hosts": hosts}, "cmd": cmd})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, ssh_fleet: Fleet) -> Iterator[Archive]:
    """Host a in group ga, host b in group gb; three finished tasks: on a, on b, on both."""
    tmp = tmp_path_factory.mktemp("archive")
    cfg = write_config(tmp, users=USERS, extra=ssh_fleet.ssh_yaml())
    (a, addr_a), (b, addr_b) = ssh_fleet.hosts[17], ssh_fleet.hosts[18]
    for name, addr, group in ((a, addr_a, "ga"), (b, addr_b, "gb")):
        r = cli("hosts", "add", name, "--address", addr, "--port", str(ssh_fleet.port), "--group", group, config=cfg)
        assert r.returncode == 0, r.stderr
    server = start_server(cfg)
    try:
        with server.client() as c:
            ids = [_submit(c, [a], "echo only-A-secret"), _submit(c, [b], "echo only-B-secret"),
                   _submit(c, [a, b], "echo both-$((40+2)); echo err-line >&2")]
            for i in ids:
                assert _wait(c, i)["status"] == "success"
        yield Archive(server, cfg, a, b, *ids)
    finally:
        server.stop()


def test_the_task_list_shows_only_tasks_with_a_host_in_the_users_groups(archive: Archive) -> None:
    """opa (operator of ga) lists the tasks on a and on a+b, never the one on b alone; the total counts
    only those; the command filter cannot reach B's task either."""
    page = archive.get("opa", "/tasks", command="only-").json()
    assert {t["id"] for t in page["items"]} == {archive.task_a} and page["total"] == 1
    page = archive.get("opa", "/tasks", limit=1000).json()
    ids = {t["id"] for t in page["items"]}
    assert {archive.task_a, archive.task_ab} <= ids and archive.task_b not in ids and page["total"] == len(ids)
    assert archive.get("opa", "/tasks", command="only-B").json() == {"items": [], "total": 0}


def test_a_task_of_another_group_is_not_found_by_any_detail_path(archive: Archive) -> None:
    """The detail, results and output of B's task answer 404 to opa, saying nothing of its content."""
    for path in (f"/tasks/{archive.task_b}", f"/tasks/{archive.task_b}/results", f"/tasks/{archive.task_b}/output"):
        r = archive.get("opa", path)
        assert r.status_code == 404, (path, r.text)
        assert "only-B" not in r.text and "may read" in r.json()["error"]["message"]


def test_a_mixed_task_shows_only_the_users_hosts(archive: Archive) -> None:
    """On the task over a and b, opa sees a's result, output group and output lines, none of b's."""
    task = archive.get("opa", f"/tasks/{archive.task_ab}").json()
    assert [g["hosts"] for g in task["groups"]] == [[archive.a]]
    results = archive.get("opa", f"/tasks/{archive.task_ab}/results").json()
    assert [r["host"] for r in results["items"]] == [archive.a] and results["total"] == 1
    events = archive.get("opa", f"/tasks/{archive.task_ab}/output").json()["items"]
    assert events and {e["host"] for e in events} == {archive.a}
    assert any(e["text"] == "both-42" for e in events) and any(e["text"] == "err-line" for e in events)


def test_the_task_summary_counts_only_the_users_hosts(archive: Archive) -> None:
    """GET /tasks/{id}/summary (what `run --server` prints): opa's counts and rows cover host a only,
    B's task is not found; the auditor's cover both hosts."""
    brief = archive.get("opa", f"/tasks/{archive.task_ab}/summary").json()
    assert brief["counts"] == {"success": 1} and [r["host"] for r in brief["results"]] == [archive.a]
    r = archive.get("opa", f"/tasks/{archive.task_b}/summary")
    assert r.status_code == 404 and "only-B" not in r.text
    assert archive.get("aud", f"/tasks/{archive.task_ab}/summary").json()["counts"] == {"success": 2}


def test_results_across_tasks_are_filtered_in_the_query(archive: Archive) -> None:
    """GET /results gives opa only host a's results, whatever the filters ask for (host b, B's task)."""
    page = archive.get("opa", "/results", limit=1000).json()
    assert {r["host"] for r in page["items"]} == {archive.a} and page["total"] == len(page["items"]) >= 2
    assert "only-B" not in json.dumps(page)
    assert archive.get("opa", "/results", host=archive.b).json() == {"items": [], "total": 0}
    assert archive.get("opa", "/results", task=archive.task_b).json()["total"] == 0


def test_admins_and_auditors_read_everything(archive: Archive) -> None:
    """admin (every group) and the auditor see all three tasks and both hosts' results and lines."""
    for user in ("admin", "aud"):
        ids = {t["id"] for t in archive.get(user, "/tasks", limit=1000).json()["items"]}
        assert {archive.task_a, archive.task_b, archive.task_ab} <= ids
        assert archive.get(user, "/results", task=archive.task_ab).json()["total"] == 2
        events = archive.get(user, f"/tasks/{archive.task_ab}/output").json()["items"]
        assert {e["host"] for e in events} == {archive.a, archive.b}


def test_the_websocket_replay_carries_only_the_users_hosts(archive: Archive) -> None:
    """The stream of a finished mixed task replays only a's events to opa; B's task closes with 4404."""
    token = archive.server.login("opa")
    events = task_stream(archive.server, token, archive.task_ab)
    assert events and {e["host"] for e in events} == {archive.a}
    assert {e["host"] for e in task_stream(archive.server, archive.server.login("aud"), archive.task_ab)} == \
        {archive.a, archive.b}
    with pytest.raises(ConnectionClosedError) as exc:
        task_stream(archive.server, token, archive.task_b)
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 4404


def test_the_live_stream_carries_only_the_users_hosts(archive: Archive) -> None:
    """Following a running task on a and b, opa receives a's lines as they come and none of b's."""
    with archive.server.client() as c:
        task_id = _submit(c, [archive.a, archive.b], "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.4; done")
        token = archive.server.login("opa")
        events = task_stream(archive.server, token, task_id)
        assert _wait(c, task_id)["status"] == "success"
    ticks = [e["text"] for e in events if e["stream"] == "stdout"]
    assert ticks == [f"tick-{i}" for i in range(1, 7)]
    assert {e["host"] for e in events} == {archive.a}


def test_the_cli_with_server_reads_through_the_same_filter(archive: Archive) -> None:
    """`small-yi tasks list|show` and `small-yi results` with --server show opa only what the API does."""
    env = {"SMALLYI_SERVER": archive.server.url, "SMALLYI_TOKEN": archive.server.login("opa")}
    listed = cli("tasks", "list", "--output", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    ids = {t["id"] for t in json.loads(listed.stdout)["items"]}
    assert {archive.task_a, archive.task_ab} <= ids and archive.task_b not in ids
    shown = cli("tasks", "show", str(archive.task_ab), "--output", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert [r["host"] for r in json.loads(shown.stdout)["results"]] == [archive.a]
    hidden = cli("tasks", "show", str(archive.task_b), env=env)
    assert hidden.returncode != 0 and "only-B" not in hidden.stdout + hidden.stderr
    results = cli("results", "--output", "json", env=env)
    assert results.returncode == 0, results.stderr
    assert {r["host"] for r in json.loads(results.stdout)["items"]} == {archive.a}


def test_log_follow_of_another_groups_host_is_refused(archive: Archive) -> None:
    """opa cannot follow a log file on host b (logs.follow is scoped): an error message, then close 4403."""
    token = archive.server.login("opa")
    url = archive.server.url.replace("http", "ws") + f"/api/v1/logs/stream?hosts={archive.b}&file=/etc/hostname"
    with ws_client.connect(url, subprotocols=[f"bearer.{token}"], open_timeout=10) as ws:  # type: ignore[list-item]
        msg = json.loads(ws.recv(timeout=20))
        assert msg["type"] == "error" and archive.b in msg["message"]
        with pytest.raises(ConnectionClosedError) as exc:
            ws.recv(timeout=20)
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 4403
