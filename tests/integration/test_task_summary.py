"""A task's summary (counts by status, the hosts worth listing), from the archive and through the API and CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import insert

from smallyi.auth.rbac import EVERY_HOST, HostScope
from smallyi.config import parse_settings
from smallyi.storage.db import Database, open_database
from smallyi.storage.models import Group, Host, HostGroup, Result, Task
from smallyi.tasks.summary import summarize
from support import Server, cli


async def _task(tmp_path: Path, statuses: dict[str, str], groups: dict[str, str] | None = None) -> tuple[Database, int]:
    """A finished task whose host ``name`` ended ``statuses[name]``; ``groups`` puts hosts in groups."""
    db = await open_database(parse_settings(f"database:\n  source: {tmp_path / 'a.db'}\n"))
    async with db.session.begin() as s:
        t = Task(command="x", status="failed", timeout=1, concurrency=1, host_count=len(statuses))
        s.add(t)
        await s.flush()
        await s.execute(insert(Result), [
            {"task_id": t.id, "host_name": h, "status": st, "exit_code": 0 if st == "success" else 1,
             "reason": "" if st == "success" else f"{h} broke", "stdout": f"out of {h}"}
            for h, st in statuses.items()])
        for group in sorted(set((groups or {}).values())):
            g = Group(name=group)
            s.add(g)
            await s.flush()
            for host in [h for h, hg in (groups or {}).items() if hg == group]:
                row = Host(name=host, address="127.0.0.1")
                s.add(row)
                await s.flush()
                s.add(HostGroup(host_id=row.id, group_id=g.id))
        return db, t.id


async def test_a_small_task_lists_every_host(tmp_path: Path) -> None:
    """Up to the limit every host is listed, ordered by name, with its full result row."""
    db, task_id = await _task(tmp_path, {"b": "failed", "a": "success", "c": "timeout"})
    brief = await summarize(db, task_id, scope=EVERY_HOST)
    assert brief["counts"] == {"success": 1, "failed": 1, "timeout": 1} and brief["total"] == 3
    assert brief["listed"] == "all" and [r["host"] for r in brief["results"]] == ["a", "b", "c"]
    assert brief["results"][1]["reason"] == "b broke" and brief["results"][1]["stdout"] == "out of b"
    await db.close()


async def test_a_large_task_lists_only_the_hosts_that_did_not_succeed(tmp_path: Path) -> None:
    """Past the limit the counts still cover every host, the rows only the failures (all of them)."""
    statuses = {f"h{i:03d}": "success" for i in range(120)} | {"h007": "failed", "h100": "unreachable"}
    db, task_id = await _task(tmp_path, statuses)
    brief = await summarize(db, task_id, scope=EVERY_HOST)
    assert brief["counts"] == {"success": 118, "failed": 1, "unreachable": 1} and brief["total"] == 120
    assert brief["listed"] == "not-success" and [r["host"] for r in brief["results"]] == ["h007", "h100"]
    small = await summarize(db, task_id, scope=EVERY_HOST, list_all_up_to=200)
    assert small["listed"] == "all" and len(small["results"]) == 120
    await db.close()


async def test_the_summary_counts_only_hosts_in_the_readers_groups(tmp_path: Path) -> None:
    """A scoped reader's counts and rows cover the hosts of its groups, nobody else's."""
    db, task_id = await _task(tmp_path, {"a1": "success", "a2": "failed", "b1": "failed"},
                              groups={"a1": "ga", "a2": "ga", "b1": "gb"})
    brief = await summarize(db, task_id, scope=HostScope(("ga",)))
    assert brief["counts"] == {"success": 1, "failed": 1}
    assert [r["host"] for r in brief["results"]] == ["a1", "a2"]
    await db.close()


def test_the_api_summary_and_the_cli_summary_agree_with_the_results(server: Server, config_file: Path) -> None:
    """GET /tasks/{id}/summary gives the task and the counts of /results; `run --server` prints the same
    closing lines as an in-process run of the same command."""
    token = server.login()
    env = {"SMALLYI_SERVER": server.url, "SMALLYI_TOKEN": token}
    remote = cli("run", "--hosts", "local", "--cmd", "echo hi; exit 3", env=env)
    assert remote.returncode == 1, remote.stderr
    with server.client(token) as c:
        task_id = max(t["id"] for t in c.get("/api/v1/tasks").json()["items"])
        brief = c.get(f"/api/v1/tasks/{task_id}/summary").json()
        results = c.get(f"/api/v1/tasks/{task_id}/results").json()["items"]
        assert c.get("/api/v1/tasks/999999/summary").status_code == 404
    assert brief["task"]["id"] == task_id and brief["task"]["status"] == "failed"
    assert brief["counts"] == {"failed": 1} and brief["listed"] == "all"
    assert brief["results"] == json.loads(json.dumps(results))
    local = cli("run", "--hosts", "local", "--cmd", "echo hi; exit 3", config=config_file)
    assert local.returncode == 1, local.stderr

    def tail(text: str) -> list[str]:  # the table and the closing line; task ids and timings vary
        return [re.sub(r"\d+\.\d+s", "T", re.sub(r"task \d+", "task N", line)).split()
                for line in text.splitlines() if not line.startswith("[")]

    assert tail(remote.stdout) == tail(local.stdout)
    assert "failed 1 (1 hosts" in remote.stdout
