"""The task center end to end: CLI and API, live stream, archive, limits, cancel, timeouts, recovery."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smallyi.testing import Fleet
from support import SMALL_YI, Server, cli, start_server, task_stream, write_config

pytestmark = pytest.mark.fleet


@pytest.fixture
def fleet_config(tmp_path: Path, ssh_fleet: Fleet) -> Path:
    """A config for the fleet, with its 20 first hosts imported into group `fleet`."""
    cfg = write_config(tmp_path, extra=ssh_fleet.ssh_yaml())
    lines = ["group: fleet", "hosts:"]
    for name, addr in ssh_fleet.hosts[:20]:
        lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {ssh_fleet.port}"]
    inv = tmp_path / "inventory.yaml"
    inv.write_text("\n".join(lines) + "\n")
    r = cli("hosts", "import", str(inv), config=cfg)
    assert r.returncode == 0, r.stderr
    return cfg


@pytest.fixture
def fleet_server(fleet_config: Path) -> Iterator[Server]:
    srv = start_server(fleet_config)
    yield srv
    srv.stop()


def test_run_on_the_fleet_prefixes_every_line(fleet_config: Path) -> None:
    """`small-yi run --group fleet` prints `[host] line` for each of 20 hosts, then a summary; exit 0."""
    r = cli("run", "--group", "fleet", "--cmd", "echo hello from $(hostname)", "--timeout", "20s", config=fleet_config)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("[host-")]
    assert len(lines) == 20
    assert {ln.split("]")[0][1:] for ln in lines} == {f"host-{i:03d}" for i in range(1, 21)}
    assert all("] hello from " in ln for ln in lines)
    assert "success 20" in r.stdout


def test_local_host_works_without_a_fleet(tmp_path: Path) -> None:
    """The built-in `local` host runs commands on the server itself: the README's first example."""
    cfg = write_config(tmp_path)
    r = cli("run", "--group", "local", "--cmd", "echo up; uptime", "--timeout", "10s", config=cfg)
    assert r.returncode == 0, r.stderr
    assert "[local] up" in r.stdout and "load average" in r.stdout


def test_exit_status_and_json_output(fleet_config: Path) -> None:
    """A non-zero exit on some hosts makes the run exit 1; --output json gives every result."""
    r = cli("run", "--hosts", "host-001,host-002", "--cmd",
            'case "$SSH_CONNECTION" in *" 127.0.1.1 "*) exit 3;; esac; echo ok',
            "--output", "json", config=fleet_config)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    by_host = {x["host"]: x for x in doc["results"]}
    assert by_host["host-001"]["status"] == "failed" and by_host["host-001"]["exit_code"] == 3
    assert by_host["host-001"]["reason"] == "exit status 3"
    assert by_host["host-002"]["status"] == "success" and by_host["host-002"]["stdout"] == "ok"
    assert doc["task"]["status"] == "failed"


def test_stderr_is_marked(fleet_config: Path) -> None:
    """Lines a host prints on stderr are marked as such in the CLI and archived apart."""
    r = cli("run", "--hosts", "host-003", "--cmd", "echo out; echo err >&2", "--output", "json", config=fleet_config)
    res = json.loads(r.stdout)["results"][0]
    assert res["stdout"] == "out" and res["stderr"] == "err"
    r = cli("run", "--hosts", "host-003", "--cmd", "echo err >&2", config=fleet_config)
    assert "[host-003]! err" in r.stdout


def test_timeout_keeps_partial_output(fleet_config: Path) -> None:
    """A command past its timeout ends `timeout` within timeout plus grace, keeping what it printed."""
    t0 = time.monotonic()
    r = cli("run", "--hosts", "host-004,host-005", "--cmd", "echo before; sleep 30; echo after",
            "--timeout", "1s", "--output", "json", config=fleet_config)
    assert time.monotonic() - t0 < 15
    assert r.returncode == 3  # timed out
    for res in json.loads(r.stdout)["results"]:
        assert res["status"] == "timeout" and res["stdout"] == "before" and "after" not in res["stdout"]


def test_archive_queries_from_cli_and_api(fleet_config: Path) -> None:
    """An in-process run is archived: the server, `tasks list/show` and `results` filters all see it."""
    cli("run", "--hosts", "host-006", "--cmd", "echo archived-line", config=fleet_config)
    cli("run", "--hosts", "host-006", "--cmd", "exit 4", config=fleet_config)
    r = cli("tasks", "list", "--output", "json", config=fleet_config)
    tasks = json.loads(r.stdout)["items"]
    assert [t["status"] for t in tasks[:2]] == ["failed", "success"]
    r = cli("tasks", "show", str(tasks[1]["id"]), config=fleet_config)
    assert "[host-006] archived-line" in r.stdout
    r = cli("results", "--host", "host-006", "--status", "failed", "--since", "1h", "--output", "json", config=fleet_config)
    items = json.loads(r.stdout)["items"]
    assert len(items) == 1 and items[0]["exit_code"] == 4
    r = cli("results", "--status", "bogus", config=fleet_config)
    assert r.returncode == 2 and "unknown status 'bogus'" in r.stderr
    # tasks by status, time range and who started them; results of one task
    ids = {t["status"]: t["id"] for t in tasks[:2]}
    by = tasks[0]["created_by"]
    r = cli("tasks", "list", "--status", "failed", "--since", "1h", "--user", by, "--output", "json", config=fleet_config)
    assert [t["id"] for t in json.loads(r.stdout)["items"]] == [ids["failed"]]
    for args in (("--user", "nobody-else"), ("--until", "2000-01-01T00:00:00Z"), ("--status", "cancelled")):
        r = cli("tasks", "list", *args, "--output", "json", config=fleet_config)
        assert r.returncode == 0 and json.loads(r.stdout)["total"] == 0, (args, r.stdout)
    r = cli("results", "--task", str(ids["success"]), "--output", "json", config=fleet_config)
    assert [(x["host"], x["status"]) for x in json.loads(r.stdout)["items"]] == [("host-006", "success")]
    srv = start_server(fleet_config)
    try:
        with srv.client() as c:
            got = c.get("/api/v1/results", params={"host": "host-006", "status": "success", "since": "1h"}).json()
            assert got["total"] == 1 and got["items"][0]["stdout"] == "archived-line"
            assert c.get("/api/v1/tasks", params={"command": "archived"}).json()["total"] == 1
            assert c.get("/api/v1/results", params={"until": "2000-01-01T00:00:00Z"}).json()["total"] == 0
            listed = c.get("/api/v1/tasks", params={"status": "failed", "since": "1h", "created_by": by}).json()
            assert [t["id"] for t in listed["items"]] == [ids["failed"]]
            assert c.get("/api/v1/tasks", params={"created_by": "nobody-else"}).json()["total"] == 0
            one = c.get("/api/v1/results", params={"task": ids["failed"]}).json()
            assert one["total"] == 1 and one["items"][0]["exit_code"] == 4
    finally:
        srv.stop()


def test_api_task_and_stream_replay(fleet_server: Server) -> None:
    """POST /tasks runs on the group; the stream gives every line; reconnecting after seq N gives the rest once."""
    token = fleet_server.login()
    with fleet_server.client(token) as c:
        t = c.post("/api/v1/tasks", json={"target": {"group": "fleet"}, "cmd": "for i in 1 2 3; do echo line$i; done",
                                          "timeout": "20s", "concurrency": 5, "rate": "100/s"})
        assert t.status_code == 201, t.text
        task = t.json()
        assert task["host_count"] == 20 and task["concurrency"] == 5 and task["rate"] == 100
        first = task_stream(fleet_server, token, task["id"], stop_after=10)
        rest = task_stream(fleet_server, token, task["id"], after=first[-1]["seq"])
        events = first + rest
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(set(seqs)) and seqs == list(range(1, len(seqs) + 1))
        lines = [e for e in events if e["stream"] == "stdout"]
        assert len(lines) == 60
        done = [e for e in events if e["stream"] == "done"]
        assert len(done) == 20 and all(e["status"] == "success" for e in done)
        final = c.get(f"/api/v1/tasks/{task['id']}").json()
        assert final["status"] == "success" and final["counts"] == {"success": 20}
        assert len(final["groups"]) == 1 and len(final["groups"][0]["hosts"]) == 20
        out = c.get(f"/api/v1/tasks/{task['id']}/output", params={"after": 0, "limit": 10000}).json()
        assert [e["seq"] for e in out["items"]] == seqs


def test_cancel_running_task_through_api(fleet_server: Server) -> None:
    """Cancel stops the remote commands and marks the unfinished hosts cancelled."""
    with fleet_server.client() as c:
        task = c.post("/api/v1/tasks", json={"target": {"group": "fleet"}, "cmd": "echo started; sleep 60",
                                             "timeout": "2m"}).json()
        deadline = time.monotonic() + 15
        while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        t0 = time.monotonic()
        assert c.post(f"/api/v1/tasks/{task['id']}/cancel").status_code == 202
        while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] == "running":
            assert time.monotonic() - t0 < 15
            time.sleep(0.1)
        final = c.get(f"/api/v1/tasks/{task['id']}").json()
        assert final["status"] == "cancelled"
        results = c.get(f"/api/v1/tasks/{task['id']}/results").json()["items"]
        assert {r["status"] for r in results} == {"cancelled"}


def test_queue_when_capacity_is_full(tmp_path: Path, ssh_fleet: Fleet) -> None:
    """With execution.max_concurrency 2, later tasks wait `queued` with their positions (API, `tasks list`,
    `run --server`), a queued task can be cancelled before any host runs, and the rest run in turn."""
    cfg = write_config(tmp_path, extra=ssh_fleet.ssh_yaml() + "execution:\n  max_concurrency: 2\n")
    inv = tmp_path / "inv.yaml"
    inv.write_text("group: fleet\nhosts:\n" + "".join(
        f"  - name: {n}\n    address: {a}\n    port: {ssh_fleet.port}\n" for n, a in ssh_fleet.hosts[:4]))
    assert cli("hosts", "import", str(inv), config=cfg).returncode == 0
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            token = c.post("/api/v1/auth/tokens", json={"name": "cli"}).json()["token"]
            first = c.post("/api/v1/tasks", json={"target": {"group": "fleet"}, "cmd": "sleep 3"}).json()
            second = c.post("/api/v1/tasks", json={"target": {"group": "fleet"}, "cmd": "echo second"}).json()
            third = c.post("/api/v1/tasks", json={"target": {"group": "fleet"}, "cmd": "echo third"}).json()
            assert second["status"] == "queued" and second["queue_position"] == 1
            assert third["status"] == "queued" and third["queue_position"] == 2
            remote = ["--server", srv.url, "--token", token]
            fourth = subprocess.Popen([SMALL_YI, "run", "--group", "fleet", "--cmd", "echo fourth", *remote],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            listed = cli("tasks", "list", "--status", "queued", *remote)
            assert listed.returncode == 0, listed.stderr
            assert "queued #1" in listed.stdout and "queued #2" in listed.stdout  # the list's short form
            shown = cli("tasks", "show", str(third["id"]), *remote)
            assert f"task {third['id']} queued (queue position 2)" in shown.stdout, shown.stdout
            cancel = c.post(f"/api/v1/tasks/{third['id']}/cancel")
            assert cancel.status_code == 202 and cancel.json()["result"] == "cancelled while queued", cancel.text
            out, err = fourth.communicate(timeout=60)
            assert fourth.returncode == 0, err
            assert "queued (queue position 3)" in err and sum(ln.endswith("] fourth") for ln in out.splitlines()) == 4
            for task, status in ((first, "success"), (second, "success"), (third, "cancelled")):
                assert c.get(f"/api/v1/tasks/{task['id']}").json()["status"] == status
            results = c.get(f"/api/v1/tasks/{third['id']}/results").json()["items"]
            assert {r["status"] for r in results} == {"cancelled"}
            assert all(r["started_at"] is None for r in results)  # no host ever ran it
    finally:
        srv.stop()


def test_cli_with_server_streams_back(fleet_server: Server) -> None:
    """`run --server URL --token T` submits to the server and prints its stream the same way."""
    with fleet_server.client() as c:
        token = c.post("/api/v1/auth/tokens", json={"name": "cli"}).json()["token"]
    r = cli("run", "--group", "fleet", "--cmd", "echo remote", env={"SMALLYI_SERVER": fleet_server.url,
                                                                   "SMALLYI_TOKEN": token})
    assert r.returncode == 0, r.stderr
    assert sum(1 for ln in r.stdout.splitlines() if ln.endswith("] remote")) == 20
    r = cli("run", "--group", "fleet", "--cmd", "true", "--server", fleet_server.url, "--token", "syt_wrong")
    assert r.returncode == 2 and "invalid token" in r.stderr


def test_cancel_cli_task_from_server(fleet_server: Server, fleet_config: Path) -> None:
    """A task run by the CLI in-process is cancelled through the server within about a second."""
    proc = subprocess.Popen([SMALL_YI, "run", "--hosts", "host-007", "--cmd", "sleep 60", "--config", str(fleet_config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with fleet_server.client() as c:
            deadline = time.monotonic() + 20
            while True:
                items = c.get("/api/v1/tasks", params={"status": "running"}).json()["items"]
                if items:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert c.post(f"/api/v1/tasks/{items[0]['id']}/cancel").json()["result"] == "cancel requested"
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 1 and "cancelled" in out
    finally:
        proc.kill()


def test_crash_marks_interrupted_with_partial_output(fleet_config: Path) -> None:
    """A server killed mid-task: on restart the task is `interrupted`, keeping what hosts had printed."""
    srv = start_server(fleet_config)
    with srv.client() as c:
        task = c.post("/api/v1/tasks", json={"target": {"hosts": ["host-008"]}, "cmd": "echo partial; sleep 60"}).json()
        time.sleep(2.0)  # > flush interval: the line is archived
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    srv = start_server(fleet_config)
    try:
        with srv.client() as c:
            t = c.get(f"/api/v1/tasks/{task['id']}").json()
            assert t["status"] == "interrupted"
            res = c.get(f"/api/v1/tasks/{task['id']}/results").json()["items"][0]
            assert res["status"] == "interrupted" and res["stdout"] == "partial"
    finally:
        srv.stop()


def test_crash_keeps_the_cut_marker_of_a_flooding_host(fleet_config: Path) -> None:
    """A host past its head budget when the server is killed: after the restart its interrupted
    output is head, a marker saying how much was cut, then the tail, as a finished host's would be."""
    assert "output:" not in fleet_config.read_text()
    with fleet_config.open("a") as f:
        f.write("output:\n  head_bytes: 20\n  tail_bytes: 20\n  flush_interval: 100ms\n")
    total = sum(len(str(i)) + 1 for i in range(1, 3001))
    cut = total - 18 - 20  # head: 1..9 (18 bytes); tail: 2997..3000 (20 bytes)
    srv = start_server(fleet_config)
    with srv.client() as c:
        task = c.post("/api/v1/tasks", json={"target": {"hosts": ["host-009"]}, "cmd": "seq 1 3000; sleep 60"}).json()
        deadline = time.monotonic() + 20
        res: dict[str, Any] = {}
        while time.monotonic() < deadline:
            res = c.get(f"/api/v1/tasks/{task['id']}/results").json()["items"][0]
            if res["stdout_cut"] == cut:
                break
            time.sleep(0.1)
        assert res["status"] == "running" and res["stdout_cut"] == cut, res
        time.sleep(0.5)  # the tail's last flush
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    srv = start_server(fleet_config)
    try:
        with srv.client() as c:
            res = c.get(f"/api/v1/tasks/{task['id']}/results").json()["items"][0]
    finally:
        srv.stop()
    head = "\n".join(str(i) for i in range(1, 10))
    assert res["status"] == "interrupted" and res["truncated"]
    assert res["stdout"] == f"{head}\n... [{cut} bytes cut] ...\n2997\n2998\n2999\n3000", res["stdout"][-200:]


def test_sigterm_closes_the_runtime_before_exiting(fleet_config: Path) -> None:
    """A server stopped by its process manager archives running tasks as `interrupted` itself, right
    away (no restart and crash recovery needed), and still exits by the signal."""
    srv = start_server(fleet_config)
    with srv.client() as c:
        task = c.post("/api/v1/tasks", json={"target": {"hosts": ["host-008"]}, "cmd": "echo partial; sleep 60"}).json()
        deadline = time.monotonic() + 15
        while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(15) == -signal.SIGTERM
    assert time.monotonic() - t0 < 10
    db = sqlite3.connect(fleet_config.parent / "data" / "small-yi.db")
    try:
        (status,) = db.execute("SELECT status FROM tasks WHERE id = ?", (task["id"],)).fetchone()
        hosts = db.execute("SELECT status FROM results WHERE task_id = ?", (task["id"],)).fetchall()
    finally:
        db.close()
    assert status == "interrupted" and hosts == [("interrupted",)]


def test_output_flood_is_bounded_in_the_archive(tmp_path: Path, ssh_fleet: Fleet) -> None:
    """A host printing 5 MB keeps only head and tail in the archive, with what was cut counted."""
    cfg = write_config(tmp_path, extra=ssh_fleet.ssh_yaml() + "output:\n  head_bytes: 1000\n  tail_bytes: 1000\n")
    name, addr = ssh_fleet.hosts[8]
    assert cli("hosts", "add", name, "--address", addr, "--port", str(ssh_fleet.port), config=cfg).returncode == 0
    r = cli("run", "--hosts", name, "--cmd", "seq 1 700000", "--quiet", "--output", "json", config=cfg)
    res = json.loads(r.stdout)["results"][0]
    assert res["status"] == "success" and res["truncated"]
    assert res["stdout"].startswith("1\n2\n3\n") and res["stdout"].endswith("699999\n700000")
    assert res["stdout_bytes"] == sum(len(str(i)) + 1 for i in range(1, 700001))
    assert len(res["stdout"]) < 3000
    db = sqlite3.connect(tmp_path / "data" / "small-yi.db")
    rows = db.execute("SELECT count(*) FROM task_output").fetchone()[0]
    db.close()
    assert rows < 1000


def test_bad_targets_are_clear(fleet_config: Path) -> None:
    """Unknown groups and hosts, and no target at all, are errors naming what is wrong."""
    r = cli("run", "--group", "nope", "--cmd", "true", config=fleet_config)
    assert r.returncode == 2 and "nope" in r.stderr
    r = cli("run", "--hosts", "host-001,ghost-9", "--cmd", "true", config=fleet_config)
    assert r.returncode == 2 and "ghost-9" in r.stderr
    r = cli("run", "--cmd", "true", config=fleet_config)
    assert r.returncode == 2 and "target" in r.stderr
    r = cli("run", "--group", "fleet", "--cmd", "true", "--timeout", "soon", config=fleet_config)
    assert r.returncode == 2 and "--timeout" in r.stderr
    r = cli("run", "--group", "fleet", "--cmd", "true", "--rate", "fast", config=fleet_config)
    assert r.returncode == 2 and "rate" in r.stderr


def test_api_rejects_bad_task_payloads(fleet_server: Server) -> None:
    """Bad timeout, rate, empty command, empty target: 422 naming the field, no task created."""
    with fleet_server.client() as c:
        cases = [
            ({"target": {"group": "fleet"}, "cmd": "x", "timeout": "soon"}, "timeout"),
            ({"target": {"group": "fleet"}, "cmd": "x", "rate": "lots"}, "rate"),
            ({"target": {"group": "fleet"}, "cmd": "  "}, "cmd"),
            ({"target": {}, "cmd": "x"}, "target"),
            ({"target": {"group": "fleet"}, "cmd": "x", "concurrency": 0}, "concurrency"),
        ]
        for body, field in cases:
            r = c.post("/api/v1/tasks", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["field"] == field, r.text
        assert c.get("/api/v1/tasks").json()["total"] == 0
        assert c.get("/api/v1/tasks/999").status_code == 404


def test_env_is_not_leaked_into_paths(tmp_path: Path) -> None:
    """SMALLYI_CONFIG is honoured when --config is not given."""
    cfg = write_config(tmp_path)
    r = subprocess.run([SMALL_YI, "run", "--group", "local", "--cmd", "echo via-env"], capture_output=True,
                       text=True, env={**os.environ, "SMALLYI_CONFIG": str(cfg)}, cwd="/", timeout=60)
    assert r.returncode == 0 and "[local] via-env" in r.stdout


def test_full_log_kept_compressed(tmp_path: Path, ssh_fleet: Fleet) -> None:
    """With output.full_log_dir set, a cut archive still leaves every line in a gzip file per host."""
    import gzip

    cfg = write_config(tmp_path, extra=ssh_fleet.ssh_yaml()
                       + "output:\n  head_bytes: 100\n  tail_bytes: 100\n  full_log_dir: ./full-logs\n")
    name, addr = ssh_fleet.hosts[9]
    assert cli("hosts", "add", name, "--address", addr, "--port", str(ssh_fleet.port), config=cfg).returncode == 0
    r = cli("run", "--hosts", name, "--cmd", "seq 1 5000; echo oops >&2", "--quiet", "--output", "json", config=cfg)
    doc = json.loads(r.stdout)
    assert doc["results"][0]["truncated"]
    path = tmp_path / "full-logs" / str(doc["task"]["id"]) / f"{name}.log.gz"
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    assert lines[:2] == ["o 1", "o 2"] and "o 5000" in lines and "e oops" in lines


def test_cli_cancel_of_a_server_task(fleet_server: Server, fleet_config: Path) -> None:
    """`small-yi tasks cancel ID` (in-process, no --server) cancels a task the server runs."""
    with fleet_server.client() as c:
        task = c.post("/api/v1/tasks", json={"target": {"hosts": ["host-010"]}, "cmd": "sleep 60"}).json()
        time.sleep(1.0)
        r = cli("tasks", "cancel", str(task["id"]), config=fleet_config)
        assert r.returncode == 0 and "cancel requested" in r.stdout
        deadline = time.monotonic() + 15
        while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] != "cancelled":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    r = cli("tasks", "cancel", str(task["id"]), config=fleet_config)
    assert r.returncode == 2 and "already finished" in r.stderr


def test_progress_counter_on_a_terminal(fleet_config: Path) -> None:
    """On a terminal `run` shows a live done/total counter and colours host names."""
    import pexpect  # type: ignore[import-untyped]

    child = pexpect.spawn(SMALL_YI, ["run", "--group", "fleet", "--cmd", "sleep 0.3; echo x", "--config", str(fleet_config)],
                          encoding="utf-8", timeout=60, dimensions=(40, 200))
    child.expect(r"\d+/20 hosts done")
    child.expect("success 20")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
