"""The output pipeline against a real SQLite archive: numbering, batching, bounds, live fan-out."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from sqlalchemy import insert, select

from smallyi.bus.memory import MemoryBus
from smallyi.config import OutputSettings, parse_settings
from smallyi.execution.events import HostDone, HostOutput, HostStarted
from smallyi.storage.db import Database, open_database
from smallyi.storage.models import Result, Task, TaskOutput
from smallyi.tasks.pipeline import OutputPipeline, topic
from smallyi.types import HostStatus
from support import BusOpener, drain


async def _setup(tmp_path: Path, hosts: list[str]) -> tuple[Database, int, dict[str, int]]:
    db = await open_database(parse_settings(f"database:\n  source: {tmp_path / 'a.db'}\n"))
    async with db.session.begin() as s:
        t = Task(command="x", status="running", timeout=1, concurrency=1)
        s.add(t)
        await s.flush()
        rows = await s.execute(insert(Result).returning(Result.id, Result.host_name),
                               [{"task_id": t.id, "host_name": h, "status": "pending"} for h in hosts])
        return db, t.id, {name: rid for rid, name in rows.all()}


async def test_events_numbered_published_and_archived(tmp_path: Path, open_bus: BusOpener) -> None:
    """Every event gets the next seq, reaches subscribers (in this process, or through Redis) and the listener,
    and lands in the archive on close."""
    db, task_id, ids = await _setup(tmp_path, ["a", "b"])
    bus = await open_bus()
    sub = bus.subscribe(topic(task_id))
    heard: list[dict] = []
    p = OutputPipeline(task_id, ids, settings=OutputSettings(), db=db, bus=bus, listener=heard.append)
    p.start()
    for h in ("a", "b"):
        p.emit(HostStarted(h, 1.0))
        p.emit(HostOutput(h, "stdout", f"hello {h}", 8))
        p.emit(HostOutput(h, "stderr", "warn", 5))
        p.emit(HostDone(h, HostStatus.SUCCESS, 0, "", 1.0, 2.0))
    await p.close()
    bus.close_topic(topic(task_id))
    assert [w["seq"] for w in heard] == list(range(1, 9))
    assert await drain(sub) == heard
    async with db.session() as s:
        out = (await s.execute(select(TaskOutput.seq, TaskOutput.stream).order_by(TaskOutput.seq))).all()
        res = {r.host_name: r for r in await s.scalars(select(Result))}
    assert [seq for seq, _ in out] == list(range(1, 9))
    assert res["a"].stdout == "hello a" and res["a"].stderr == "warn" and res["a"].status == "success"
    assert res["a"].output_digest != res["b"].output_digest
    done = json.loads(next(w for w in heard if w["stream"] == "done")["text"])
    assert done == {"status": "success", "exit_code": 0, "reason": "", "duration": 1.0}
    await db.close()


async def test_a_failing_listener_loses_nothing_from_the_archive(tmp_path: Path, open_bus: BusOpener) -> None:
    """The CLI's printer failing (its stdout a closed pipe) stops the printing, not the task: every event
    is still numbered, published and archived, and every host's result is written."""
    db, task_id, ids = await _setup(tmp_path, ["a", "b"])
    bus = await open_bus()
    sub = bus.subscribe(topic(task_id))
    heard: list[dict] = []

    def printer(w: dict) -> None:
        heard.append(w)
        raise BrokenPipeError(32, "Broken pipe")

    p = OutputPipeline(task_id, ids, settings=OutputSettings(), db=db, bus=bus, listener=printer)
    p.start()
    for h in ("a", "b"):
        p.emit(HostStarted(h, 1.0))
        p.emit(HostOutput(h, "stdout", f"hello {h}", 8))
        p.emit(HostDone(h, HostStatus.SUCCESS, 0, "", 1.0, 2.0))
    await p.close()
    bus.close_topic(topic(task_id))
    assert len(heard) == 1 and [w["seq"] for w in await drain(sub)] == list(range(1, 7))  # told once, then left alone
    async with db.session() as s:
        out = (await s.execute(select(TaskOutput.seq).order_by(TaskOutput.seq))).scalars().all()
        res = {r.host_name: r for r in await s.scalars(select(Result))}
    assert list(out) == list(range(1, 7))
    assert {h: (r.status, r.stdout) for h, r in res.items()} == {"a": ("success", "hello a"), "b": ("success", "hello b")}
    await db.close()


async def test_flood_is_cut_and_marked(tmp_path: Path) -> None:
    """Past the head budget lines are held as a bounded tail; a `cut` event counts the rest."""
    db, task_id, ids = await _setup(tmp_path, ["a"])
    p = OutputPipeline(task_id, ids, settings=OutputSettings(head_bytes=20, tail_bytes=20), db=db, bus=MemoryBus())
    p.emit(HostStarted("a", 1.0))
    for i in range(1000):
        p.emit(HostOutput("a", "stdout", f"{i:04d}", 5))
    p.emit(HostDone("a", HostStatus.SUCCESS, 0, "", 1.0, 2.0))
    assert len(p.pending) < 20
    await p.close()
    async with db.session() as s:
        r = await s.scalar(select(Result))
        streams = [x for (x,) in await s.execute(select(TaskOutput.stream).order_by(TaskOutput.seq))]
    assert r is not None
    assert r.stdout.startswith("0000\n0001\n0002\n0003\n") and r.stdout.endswith("0996\n0997\n0998\n0999")
    assert r.stdout_cut == 992 * 5 and r.stdout_bytes == 5000
    assert streams.count("cut") == 1 and streams[-1] == "done"
    await db.close()


async def test_identical_output_is_judged_on_every_line_not_only_the_kept_ones(tmp_path: Path) -> None:
    """Hosts whose head and tail are the same but whose cut middle differs are not grouped as identical."""
    db, task_id, ids = await _setup(tmp_path, ["a", "b", "c"])
    p = OutputPipeline(task_id, ids, settings=OutputSettings(head_bytes=20, tail_bytes=20), db=db, bus=MemoryBus())
    for h in ("a", "b", "c"):
        p.emit(HostStarted(h, 1.0))
        for i in range(100):
            middle = "ERROR" if h == "c" and i == 50 else f"{i:04d}"  # only c differs, far inside the cut
            p.emit(HostOutput(h, "stdout", middle, 5))
        p.emit(HostDone(h, HostStatus.SUCCESS, 0, "", 1.0, 2.0))
    await p.close()
    async with db.session() as s:
        res = {r.host_name: r for r in await s.scalars(select(Result))}
    assert res["a"].stdout == res["c"].stdout and res["a"].stdout_cut > 0  # what is kept cannot tell them apart
    assert res["a"].output_digest == res["b"].output_digest != res["c"].output_digest
    await db.close()


async def test_a_failed_flush_loses_nothing(tmp_path: Path) -> None:
    """If writing a batch fails, its rows stay pending, in order, for the next attempt."""
    db, task_id, ids = await _setup(tmp_path, ["a"])
    p = OutputPipeline(task_id, ids, settings=OutputSettings(), db=db, bus=MemoryBus())
    p.emit(HostStarted("a", 1.0))
    p.emit(HostOutput("a", "stdout", "one", 4))
    real = db.session
    db.session = None  # type: ignore[assignment]
    with contextlib.suppress(Exception):
        await p.flush()
    db.session = real
    assert [w["seq"] for w in p.pending] == [1, 2]
    await p.flush()
    assert p.pending == []
    await db.close()


async def test_a_batch_being_written_stays_visible_to_viewers_catching_up(tmp_path: Path) -> None:
    """Events a flush is writing (no longer pending, not yet committed) are still in pending_after, in order."""
    import asyncio
    from types import SimpleNamespace

    db, task_id, ids = await _setup(tmp_path, ["a"])
    p = OutputPipeline(task_id, ids, settings=OutputSettings(), db=db, bus=MemoryBus())
    p.emit(HostStarted("a", 1.0))
    p.emit(HostOutput("a", "stdout", "x", 2))
    gate = asyncio.Event()

    @contextlib.asynccontextmanager
    async def slow_begin():  # type: ignore[no-untyped-def]
        await gate.wait()
        async with db.session.begin() as s:
            yield s

    p.db = SimpleNamespace(session=SimpleNamespace(begin=slow_begin))  # type: ignore[assignment]
    flushing = asyncio.create_task(p.flush())
    await asyncio.sleep(0)  # the batch is taken, its write not committed
    assert p.pending == []
    assert [w["seq"] for w in p.pending_after(0)] == [1, 2]
    p.emit(HostOutput("a", "stdout", "y", 2))
    assert [w["seq"] for w in p.pending_after(1)] == [2, 3]
    gate.set()
    await flushing
    assert [w["seq"] for w in p.pending_after(0)] == [3]
    await db.close()


async def _archived(db: Database) -> list[tuple[int, str]]:
    async with db.session() as s:
        return [(seq, data) for seq, data in await s.execute(
            select(TaskOutput.seq, TaskOutput.data).where(TaskOutput.stream == "stdout").order_by(TaskOutput.seq))]


async def test_the_tail_is_archived_while_the_host_runs(tmp_path: Path) -> None:
    """Past the head, each flush archives the lines the tail keeps and removes those it has cut since:
    the archive holds the head and the current tail mid-run (crash safety), viewers catching up get
    the tail from pending_after, and the end leaves head + tail + cut + done."""
    db, task_id, ids = await _setup(tmp_path, ["a"])
    p = OutputPipeline(task_id, ids, settings=OutputSettings(head_bytes=10, tail_bytes=10), db=db, bus=MemoryBus())
    p.emit(HostStarted("a", 1.0))  # seq 1
    for i in range(4):  # seq 2-5: "0000" and "0001" fill the head, "0002" and "0003" the tail
        p.emit(HostOutput("a", "stdout", f"{i:04d}", 5))
    assert [w["text"] for w in p.pending_after(3)] == ["0002", "0003"]
    await p.flush()
    assert await _archived(db) == [(2, "0000"), (3, "0001"), (4, "0002"), (5, "0003")]
    assert p.pending_after(0) == []
    for i in range(4, 40):  # seq 6-41; the tail keeps the last two
        p.emit(HostOutput("a", "stdout", f"{i:04d}", 5))
    assert [w["text"] for w in p.pending_after(0)] == ["0038", "0039"]
    assert len(p.pending) == 0  # memory: the tail, not every line since the flush
    await p.flush()
    assert await _archived(db) == [(2, "0000"), (3, "0001"), (40, "0038"), (41, "0039")]
    async with db.session() as s:  # for a crash: where the cut is (the head, a line per newline), how big
        r = await s.scalar(select(Result))
    assert r is not None and (r.stdout, r.stdout_cut, r.stderr, r.stderr_cut) == ("0000\n0001\n", 180, "", 0)
    p.emit(HostOutput("a", "stdout", "0040", 5))  # seq 42, cuts 40
    p.emit(HostDone("a", HostStatus.SUCCESS, 0, "", 1.0, 2.0))
    await p.close()
    assert await _archived(db) == [(2, "0000"), (3, "0001"), (41, "0039"), (42, "0040")]
    async with db.session() as s:
        r = await s.scalar(select(Result))
        streams = [x for (x,) in await s.execute(select(TaskOutput.stream).order_by(TaskOutput.seq))]
    assert r is not None and r.stdout == "0000\n0001\n... [37 lines, 185 bytes cut] ...\n0039\n0040"
    assert streams[-2:] == ["cut", "done"]
    await db.close()
