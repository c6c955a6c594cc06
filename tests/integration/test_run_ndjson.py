"""`--output ndjson`: one JSON object per event, each line out the moment it happens, through a pipe.

Against the OpenSSH fleet: `run` in-process and with `--server`, read line by line as it runs (and
through `jq -c`); `tasks show` gives the archived events of the same task; `logs` follows a file.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smallyi.testing import Fleet
from support import SMALL_YI, Server, cli, start_server, write_config

pytestmark = pytest.mark.fleet

AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
#: prints a line, waits, prints another: the first must be out of the pipe before the second exists
SLOW = "echo first; sleep 3; echo second >&2; exit 3"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, ssh_fleet: Fleet) -> Iterator[tuple[Path, Server]]:
    tmp = tmp_path_factory.mktemp("ndjson")
    cfg = write_config(tmp, extra=ssh_fleet.ssh_yaml())
    for name, addr in ssh_fleet.hosts[:2]:
        r = cli("hosts", "add", name, "--address", addr, "--port", str(ssh_fleet.port), "--group", "nd", config=cfg)
        assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    yield cfg, srv
    srv.stop()


def _live(argv: list[str], env: dict[str, str] | None = None, *, shell: bool = False,
          ) -> tuple[list[str], list[float], int]:
    """Run ``argv`` with stdout a pipe; (its lines, when each was read, exit status)."""
    import os

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, shell=shell,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    lines, times = [], []
    while True:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no line within 60 s"
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        times.append(time.monotonic())
    proc.wait(30)
    return lines, times, proc.returncode


def _check_schema(events: list[dict[str, Any]], hosts: set[str]) -> None:
    """task first, summary last; every event stamped; per host a start, its lines, a done."""
    assert events[0]["type"] == "task" and events[-1]["type"] == "summary"
    assert all(AT.fullmatch(e["at"]) for e in events), events
    body = events[1:-1]
    seqs = [e["seq"] for e in body]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for host in hosts:
        mine = [e for e in body if e["host"] == host]
        assert [e["type"] for e in mine] == ["start", "output", "output", "done"], mine
        assert mine[1] == {"type": "output", "seq": mine[1]["seq"], "at": mine[1]["at"], "host": host,
                           "stream": "stdout", "text": "first"}
        assert (mine[2]["stream"], mine[2]["text"]) == ("stderr", "second")
        done = mine[3]
        assert (done["status"], done["exit_code"], done["reason"]) == ("failed", 3, "exit status 3")
        assert 2.5 < done["duration"] < 30 and set(done) == {"type", "seq", "at", "host", "status", "exit_code",
                                                              "reason", "duration"}
    summary = events[-1]
    assert summary["counts"] == {"failed": len(hosts)} and summary["total"] == len(hosts)
    assert summary["reasons"] == [{"status": "failed", "reason": "exit status 3", "count": len(hosts),
                                   "hosts": sorted(hosts)}]
    assert summary["exit_status"] == 1 and summary["task"]["status"] == "failed"
    assert summary["task"]["id"] == events[0]["task"]["id"]


def test_run_streams_one_object_per_event_as_it_happens(setup: tuple[Path, Server]) -> None:
    """In-process and with --server: the first host line is out of the pipe seconds before the command
    ends; task, start, output, done and summary follow the documented schema; the exit status is run's."""
    cfg, srv = setup
    remote = {"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": srv.login()}
    for env, extra in ((None, ["--config", str(cfg)]), (remote, [])):
        lines, times, code = _live([SMALL_YI, "run", "--group", "nd", "--cmd", SLOW, "-o", "ndjson", *extra], env)
        events = [json.loads(line) for line in lines]
        assert code == 1, lines
        _check_schema(events, {"host-001", "host-002"})
        # the first line came out of the pipe while the hosts still slept, seconds before they ended
        first = min(t for t, e in zip(times, events, strict=True) if e["type"] == "output")
        last_done = max(t for t, e in zip(times, events, strict=True) if e["type"] == "done")
        assert last_done - first > 2, (first, last_done)


def test_run_through_jq_is_live(setup: tuple[Path, Server]) -> None:
    """`small-yi run ... -o ndjson | jq -c` prints each event as it comes, not at the end (jq writing to a
    pipe itself needs --unbuffered; on a terminal it prints each line anyway)."""
    if shutil.which("jq") is None:
        if os.environ.get("CI", "") not in ("", "0", "false"):
            pytest.fail("jq is not installed (scripts/test installs it as root: apt-get install -y jq)")
        pytest.skip("jq is not installed (apt-get install -y jq)")
    cfg, _ = setup
    cmd = (f"{SMALL_YI} run --hosts host-001 --cmd '{SLOW}' -o ndjson --config {cfg} "
           "| jq -c --unbuffered 'select(.type == \"output\") | [.host, .stream, .text]'")  # jq's own pipe
    lines, times, _ = _live([cmd], shell=True)
    assert [json.loads(line) for line in lines] == [["host-001", "stdout", "first"], ["host-001", "stderr", "second"]]
    assert times[1] - times[0] > 2, times  # the first came out of jq before the host's sleep ended


def test_quiet_and_tasks_show_give_the_same_events(setup: tuple[Path, Server]) -> None:
    """-q leaves out the output events; `tasks show ID -o ndjson` (in-process and --server) gives the
    archived events of a run with the times and sequence numbers the run streamed."""
    cfg, srv = setup
    r = cli("run", "--group", "nd", "--cmd", "echo a; echo b", "-o", "ndjson", config=cfg)
    assert r.returncode == 0, r.stderr
    live = [json.loads(line) for line in r.stdout.splitlines()]
    task_id = live[0]["task"]["id"]
    remote = {"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": srv.login()}
    for shown in (cli("tasks", "show", str(task_id), "-o", "ndjson", config=cfg),
                  cli("tasks", "show", str(task_id), "-o", "ndjson", env=remote)):
        archived = [json.loads(line) for line in shown.stdout.splitlines()]
        assert archived[1:-1] == live[1:-1]
        assert archived[0]["type"] == "task" and archived[-1]["type"] == "summary"
        assert archived[-1]["counts"] == {"success": 2} and archived[-1]["reasons"] == []
    quiet = cli("run", "--group", "nd", "--cmd", "echo a", "-q", "-o", "ndjson", config=cfg)
    assert [json.loads(line)["type"] for line in quiet.stdout.splitlines()].count("output") == 0


def test_logs_streams_ndjson(setup: tuple[Path, Server]) -> None:
    """`logs -o ndjson`: start and output events with `at` and `host`, no `seq`, each line as it comes."""
    cfg, _ = setup
    folder = Path(tempfile.mkdtemp(prefix="smallyi-nd-", dir="/tmp"))
    folder.chmod(0o755)
    log = folder / "app.log"
    log.write_text("old\n")
    log.chmod(0o644)
    proc = subprocess.Popen([SMALL_YI, "logs", "--hosts", "host-001", "--file", str(log), "--lines", "1",
                             "-o", "ndjson", "--config", str(cfg)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        events = [json.loads(proc.stdout.readline()) for _ in range(2)]
        with log.open("a") as f:
            f.write("new\n")
        events.append(json.loads(proc.stdout.readline()))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert [(e["type"], e.get("text")) for e in events] == [("start", None), ("output", "old"), ("output", "new")]
    assert all(AT.fullmatch(e["at"]) and e["host"] == "host-001" and "seq" not in e for e in events)


@pytest.mark.parametrize("fmt", ["ndjson", "text"])
def test_a_reader_that_goes_away_stops_the_printing_not_the_run(setup: tuple[Path, Server], fmt: str) -> None:
    """`small-yi run ... | head -1`: the rest is not printed, no traceback, the exit status is the run's,
    and the archive holds every host's result and output."""
    cfg, _ = setup
    proc = subprocess.Popen([SMALL_YI, "run", "--group", "nd", "--cmd", "echo first; sleep 1; seq 1 2000; exit 3",
                             "-o", fmt, "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()  # the reader goes away while the hosts sleep
    err = proc.stderr.read()
    assert proc.wait(60) == 1 and "Traceback" not in err and "Broken pipe" not in err, err
    task_id = json.loads(cli("tasks", "list", "--limit", "1", "-o", "json", config=cfg).stdout)["items"][0]["id"]
    doc = json.loads(cli("tasks", "show", str(task_id), "-o", "json", config=cfg).stdout)
    assert {r["host"]: (r["status"], r["stdout"].split("\n")[:2], r["stdout_bytes"]) for r in doc["results"]} == {
        h: ("failed", ["first", "1"], 6 + sum(len(str(i)) + 1 for i in range(1, 2001))) for h in ("host-001", "host-002")}
