"""Catching up from the archive: the stream's replay frames against a real SQLite archive, and a
viewer replaying a 100,000-line task through a real server's WebSocket."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websockets.sync.client as ws_client
from sqlalchemy import insert

from smallyi.auth.rbac import EVERY_HOST, HostScope
from smallyi.config import parse_settings
from smallyi.execution.wire import from_row as wire_from_row
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.service import InventoryService
from smallyi.storage.db import Database, open_database
from smallyi.storage.models import Task, TaskOutput
from smallyi.tasks.replay import archived_frames
from support import cli, start_server, task_stream, write_config

TEXTS = ['plain', 'quote " and \\ backslash', "tab\tand \x1b[31mcolour\x1b[0m", "中文 ünïcode ✓", "", "x" * 300]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(parse_settings(f"database:\n  source: {tmp_path / 'r.db'}\n", base_dir=tmp_path))
    yield database
    await database.close()


async def _archive(db: Database, n: int) -> list[tuple[int, str, str, str, datetime]]:
    """Task 1 with ``n`` output events from web-1 and db-1, a cut marker and each host's done event, a
    few of them in each millisecond."""
    rows = []
    t0 = datetime(2026, 12, 7, 18, 30, tzinfo=UTC)
    for seq in range(1, n + 1):
        host = "web-1" if seq % 3 else "db-1"
        rows.append((seq, host, "stderr" if seq % 7 == 0 else "stdout", TEXTS[seq % len(TEXTS)]))
    rows.append((n + 1, "web-1", "cut", json.dumps({"lines": 5, "bytes": 99})))
    rows.append((n + 2, "web-1", "done", json.dumps({"status": "success", "exit_code": 0, "duration": 1.5})))
    rows.append((n + 3, "db-1", "done", json.dumps({"status": "failed", "exit_code": 2, "reason": "exit \"2\""})))
    timed = [(*r, t0 + timedelta(milliseconds=r[0] // 3)) for r in rows]
    async with db.session.begin() as s:
        await s.execute(insert(Task).values(id=1, command="x", status="success", timeout=60.0, concurrency=1))
        await s.execute(insert(TaskOutput), [
            {"task_id": 1, "seq": seq, "host_name": h, "stream": st, "data": d, "at": at} for seq, h, st, d, at in timed])
    return timed


async def _replayed(db: Database, after: int, scope: HostScope, **kw: int) -> tuple[list[dict], list[int]]:
    events: list[dict] = []
    frames: list[int] = []
    async for frame, last in archived_frames(db, 1, after, scope=scope, **kw):
        message = json.loads(frame)
        assert message["type"] == "events" and message["events"][-1]["seq"] == last
        events += message["events"]
        frames.append(len(frame))
    return events, frames


async def test_frames_hold_every_event_as_the_wire_form(db: Database) -> None:
    """Replayed frames carry every archived event after `after`, in order, each equal to its wire form
    (escapes, non-ASCII, done and cut events), across pages and frames of the sizes asked for."""
    rows = await _archive(db, 2500)
    events, frames = await _replayed(db, 0, EVERY_HOST, page_rows=700, frame_bytes=16 * 1024)
    assert events == [wire_from_row(*r) for r in rows]
    assert [e["at"] for e in events[:4]] == ["2026-12-07T18:30:00.000Z", "2026-12-07T18:30:00.000Z",
                                             "2026-12-07T18:30:00.001Z", "2026-12-07T18:30:00.001Z"]
    assert len(frames) > 5 and max(frames) < 16 * 1024 + 500
    rest, _ = await _replayed(db, 2400, EVERY_HOST, page_rows=700)
    assert [e["seq"] for e in rest] == list(range(2401, 2504))
    assert (await _replayed(db, 2503, EVERY_HOST))[0] == []


async def test_frames_keep_to_the_readers_groups(db: Database) -> None:
    """A scope of group web replays only web hosts' events (filtered in SQL, pages still complete)."""
    await InventoryService(db).upsert([HostSpec("web-1", "10.0.0.1", groups=("web",)),
                                       HostSpec("db-1", "10.0.0.2", groups=("db",))], source="import")
    rows = await _archive(db, 1000)
    events, _ = await _replayed(db, 0, HostScope(("web",)), page_rows=100)
    assert events == [wire_from_row(*r) for r in rows if r[1] == "web-1"]


@pytest.mark.postgres
async def test_frames_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """The same frames from PostgreSQL."""
    database = await open_database(parse_settings(f"database:\n  driver: postgres\n  source: {pg_url}\n",
                                                  base_dir=tmp_path))
    try:
        rows = await _archive(database, 1500)
        events, _ = await _replayed(database, 10, EVERY_HOST, page_rows=400, frame_bytes=8 * 1024)
        assert events == [wire_from_row(*r) for r in rows[10:]]
    finally:
        await database.close()


@pytest.mark.slow
def test_a_viewer_catches_up_a_big_task_through_the_stream(tmp_path: Path) -> None:
    """A 100,000-line task replays through the WebSocket whole, in order, once, in frames far larger than
    a few thousand events; reconnecting after a seq gives exactly the rest."""
    cfg = write_config(tmp_path, extra="output:\n  head_bytes: 50000000\n  tail_bytes: 0\n")
    r = cli("run", "-g", "local", "-q", "--cmd", "seq -f 'line %06g' 1 100000", config=cfg)
    assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    try:
        token = srv.login()

        def stream(after: int) -> tuple[list[dict], int]:
            url = srv.url.replace("http", "ws") + f"/api/v1/tasks/1/stream?after={after}"
            got, frames = [], 0
            with ws_client.connect(url, subprotocols=[f"bearer.{token}"], max_size=None) as ws:  # type: ignore[list-item]
                while (msg := json.loads(ws.recv(timeout=60)))["type"] != "end":
                    got += msg["events"]
                    frames += 1
            return got, frames

        started = time.monotonic()
        events, frames = stream(0)
        took = time.monotonic() - started
        lines = [e["text"] for e in events if e["stream"] == "stdout"]
        assert lines == [f"line {i:06d}" for i in range(1, 100_001)]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert frames < 20, frames  # 2,000 events a frame before
        rest, _ = stream(99_990)
        assert [e["seq"] for e in rest] == list(range(99_991, len(events) + 1))
        print(f"replayed {len(events)} events in {took:.2f}s, {frames} frames")
    finally:
        srv.stop()


def test_a_viewer_resuming_past_the_head_gets_the_tail(tmp_path: Path) -> None:
    """A host past its head budget: mid-run the archive already holds its tail lines (crash safety), and
    a viewer that reconnects after seq N gets every line after N once, the tail included."""
    cfg = write_config(tmp_path, extra="output:\n  head_bytes: 60\n  tail_bytes: 10000\n")
    srv = start_server(cfg)
    try:
        token = srv.login()
        with srv.client(token) as c:
            t = c.post("/api/v1/tasks", json={"target": {"group": "local"}, "timeout": "30s",
                                              "cmd": "for i in $(seq 1 30); do echo line$i; done; sleep 4; echo end"})
            assert t.status_code == 201, t.text
            task_id = t.json()["id"]
            first = task_stream(srv, token, task_id, stop_after=21)  # start + line1..line20
            assert [e["text"] for e in first[1:]] == [f"line{i}" for i in range(1, 21)]
            archived: list[str] = []
            deadline = time.monotonic() + 3
            while len(archived) < 30 and time.monotonic() < deadline:
                time.sleep(0.2)
                out = c.get(f"/api/v1/tasks/{task_id}/output", params={"after": 0, "limit": 1000}).json()
                archived = [e["text"] for e in out["items"] if e["stream"] == "stdout"]
            assert archived == [f"line{i}" for i in range(1, 31)]
            assert c.get(f"/api/v1/tasks/{task_id}").json()["status"] == "running"
            rest = task_stream(srv, token, task_id, after=first[-1]["seq"])
            events = first + rest
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            assert [e["text"] for e in events if e["stream"] == "stdout"] == [
                *(f"line{i}" for i in range(1, 31)), "end"]
    finally:
        srv.stop()
