"""Nothing is lost without a marker: a long line is kept to its limit, counted and marked; a listing
that pages either follows every page or says how many it did not show. The real CLI, the `local` host,
a real server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import insert

from smallyi.config import parse_settings
from smallyi.storage.db import open_database
from smallyi.storage.models import Result, Task
from support import cli, start_server, write_config

#: one line of 20,480 bytes, one of 5,000,000, then a short one
LONG_LINES = ("head -c 20480 /dev/zero | tr '\\0' x; echo; head -c 5000000 /dev/zero | tr '\\0' y; echo; "
              "echo end")
LIMIT = 16 * 1024


def test_a_20_kb_line_is_kept_to_the_limit_counted_and_marked(tmp_path: Path) -> None:
    """A line over output.max_line_bytes keeps its first 16 KiB, says how much was cut, and the result
    counts it: truncated, stdout_cut (it used to be kept silently cut: truncated false, 0 bytes cut)."""
    cfg = write_config(tmp_path)
    r = cli("run", "--hosts", "local", "--output", "json", "--cmd", "head -c 20480 /dev/zero | tr '\\0' x; echo",
            config=cfg)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["results"][0]
    assert res["stdout"] == "x" * LIMIT + f" ... [{20480 - LIMIT} bytes cut from this line]"
    assert res["truncated"] is True and res["stdout_cut"] == 20480 - LIMIT and res["stdout_bytes"] == 20481


def test_a_5_mb_line_keeps_its_head(tmp_path: Path) -> None:
    """A 5 MB line keeps its first 16 KiB (it used to keep nothing), live, archived and in `tasks show`."""
    cfg = write_config(tmp_path)
    live = cli("run", "--hosts", "local", "--cmd", LONG_LINES, config=cfg)
    assert live.returncode == 0, live.stderr
    lines = live.stdout.splitlines()
    assert f"[local] {'x' * LIMIT} ... [{20480 - LIMIT} bytes cut from this line]" in lines
    assert f"[local] {'y' * LIMIT} ... [{5_000_000 - LIMIT} bytes cut from this line]" in lines
    assert "[local] end" in lines
    doc = json.loads(cli("results", "--task", "1", "--output", "json", config=cfg).stdout)
    res = doc["items"][0]
    assert res["stdout"].split("\n") == [
        "x" * LIMIT + f" ... [{20480 - LIMIT} bytes cut from this line]",
        "y" * LIMIT + f" ... [{5_000_000 - LIMIT} bytes cut from this line]",
        "end",
    ]
    assert res["truncated"] and res["stdout_cut"] == (20480 - LIMIT) + (5_000_000 - LIMIT)
    shown = cli("tasks", "show", "1", config=cfg)
    assert shown.returncode == 0, shown.stderr
    assert f"[local] {'y' * LIMIT} ... [{5_000_000 - LIMIT} bytes cut from this line]" in shown.stdout.splitlines()
    assert f"(output cut: {(20480 - LIMIT) + (5_000_000 - LIMIT)} bytes not archived)" in shown.stdout


async def _big_task(db_path: Path, hosts: int) -> int:
    """A finished task of ``hosts`` hosts written straight into the archive (as a run would leave it)."""
    db = await open_database(parse_settings(f"database:\n  source: {db_path}\n"))
    try:
        async with db.session.begin() as s:
            t = Task(command="uptime", status="success", timeout=1, concurrency=1, host_count=hosts,
                     counts={"success": hosts})
            s.add(t)
            await s.flush()
            await s.execute(insert(Result), [
                {"task_id": t.id, "host_name": f"h{i:05d}", "status": "success", "exit_code": 0, "reason": "",
                 "stdout": f"up on h{i:05d}"} for i in range(hosts)])
            return int(t.id)
    finally:
        await db.close()


@pytest.mark.slow
async def test_tasks_show_prints_every_host_of_a_task_larger_than_a_page(tmp_path: Path) -> None:
    """`tasks show` (in-process and --server) of a 2,500-host task prints all 2,500 hosts, in -o json too
    (--server used to print the first 1,000 and say nothing)."""
    cfg = write_config(tmp_path)
    (tmp_path / "data").mkdir()
    n = 2500
    task_id = await _big_task(tmp_path / "data" / "small-yi.db", n)
    srv = start_server(cfg)
    try:
        env = {"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": srv.login()}
        for remote in (True, False):
            shown = cli("tasks", "show", str(task_id), env=env if remote else None, config=None if remote else cfg)
            assert shown.returncode == 0, shown.stderr
            headers = re.findall(r"^== (h\d+) success", shown.stdout, re.M)
            assert headers == [f"h{i:05d}" for i in range(n)], (remote, len(headers))
            assert f"[h{n - 1:05d}] up on h{n - 1:05d}" in shown.stdout
            doc = json.loads(cli("tasks", "show", str(task_id), "--output", "json", env=env if remote else None,
                                 config=None if remote else cfg).stdout)
            assert [r["host"] for r in doc["results"]] == [f"h{i:05d}" for i in range(n)]
    finally:
        srv.stop()


async def test_listings_that_show_one_page_say_so(tmp_path: Path) -> None:
    """`results` and `tasks list` print one page and a line saying how many of how many, and how to see
    the next; --offset shows it."""
    cfg = write_config(tmp_path)
    (tmp_path / "data").mkdir()
    task_id = await _big_task(tmp_path / "data" / "small-yi.db", 120)
    await _big_task(tmp_path / "data" / "small-yi.db", 3)
    first = cli("results", "--task", str(task_id), config=cfg)
    assert first.returncode == 0, first.stderr
    assert "showing 1-50 of 120 results; more with --offset 50 or a larger --limit" in first.stdout
    last = cli("results", "--task", str(task_id), "--offset", "100", config=cfg)
    assert "showing 101-120 of 120 results" in last.stdout and "h00119" in last.stdout and "h00099" not in last.stdout
    whole = cli("results", "--task", str(task_id), "--limit", "200", config=cfg)
    assert "120 of 120 results" in whole.stdout
    tasks = cli("tasks", "list", "--limit", "1", config=cfg)
    assert "showing 1-1 of 2 tasks; more with --offset 1 or a larger --limit" in tasks.stdout
