"""The output pipeline of one task: number engine events, publish them live, archive them in batches.

Every event gets the task's next sequence number and the time it happened (``at``, ISO 8601 UTC with
milliseconds) and goes, in its wire form (``execution.wire``), to the bus (live viewers) and to an optional
listener (the in-process CLI); the archive keeps that time with it. The archive gets the same events
in batches, at most ``output.flush_interval`` after they happened: no database round trip per line.
What a host prints is bounded: the head goes to the archive as it comes; past it, the lines the tail
keeps go at each flush too, and those the tail has dropped since are removed again, so the archive
holds the head and the current tail (in memory: at most the tail), and the middle is counted and
marked with a ``cut`` event when the host ends. A line the splitter cut is archived with its marker, and
its lost bytes count in the result's ``<stream>_cut`` with the middle's. While it runs, the host's result row records the head
and the bytes cut so far, so that a crash's recovery can still mark where and how much was cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

from sqlalchemy import Table, bindparam, delete, insert, update

from smallyi.bus.base import Bus
from smallyi.config import OutputSettings
from smallyi.execution import wire
from smallyi.execution.events import Event, HostDone, HostOutput, HostStarted, Stream
from smallyi.execution.wire import Archived
from smallyi.storage import private
from smallyi.storage.db import Database
from smallyi.storage.models import Result, Task, TaskOutput
from smallyi.tasks.capture import StreamCapture
from smallyi.timestamps import Stamper
from smallyi.types import HostStatus

log = logging.getLogger(__name__)

#: takes each event as it is published (the in-process CLI's printer)
Listener = Callable[[Archived], None]
_W = TypeVar("_W", wire.Line, wire.Start, wire.Cut, wire.Done)
#: one archive statement's parameters (a result row's update, a range of lines to delete)
Params = dict[str, Any]

# The archive writes are SQLAlchemy Core statements on the tables, executed many (one prepared statement,
# the DBAPI's executemany): the ORM's bulk paths cost a third more CPU per row for the same SQL.
_OUTPUT = cast(Table, TaskOutput.__table__)
_RESULTS = cast(Table, Result.__table__)
_TASKS = cast(Table, Task.__table__)
_INSERT_OUTPUT = insert(_OUTPUT)
#: one UPDATE per result row, by id; the SET clause is the columns each parameter dict names
_UPDATE_RESULT = update(_RESULTS).where(_RESULTS.c.id == bindparam("rid"))
_UPDATE_TASK = update(_TASKS).where(_TASKS.c.id == bindparam("tid"))
#: removes one host stream's tail lines that were archived and have been cut since
_DELETE_CUT = delete(_OUTPUT).where(
    _OUTPUT.c.task_id == bindparam("tid"), _OUTPUT.c.host_name == bindparam("h"),
    _OUTPUT.c.stream == bindparam("st"), _OUTPUT.c.seq > bindparam("lo"), _OUTPUT.c.seq <= bindparam("hi"),
)


def _by_columns(updates: list[Params]) -> list[list[Params]]:
    """Updates grouped by the columns they set, in order of first appearance (one executemany each)."""
    groups: dict[tuple[str, ...], list[Params]] = {}
    for u in updates:
        groups.setdefault(tuple(sorted(u)), []).append(u)
    return list(groups.values())


def topic(task_id: int) -> str:
    return f"task:{task_id}"


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class _Host:
    __slots__ = ("err", "full", "full_path", "marked", "name", "out", "result_id", "started")

    def __init__(self, name: str, result_id: int, settings: OutputSettings) -> None:
        self.name = name
        self.result_id = result_id
        self.out = StreamCapture(settings.head_bytes, settings.tail_bytes)
        self.err = StreamCapture(settings.head_bytes, settings.tail_bytes)
        self.started: float | None = None
        self.full: TextIO | None = None
        self.full_path: str | None = None
        #: per stream, the cut bytes last written to the result row while the host runs
        self.marked = {"stdout": 0, "stderr": 0}

    def captures(self) -> tuple[tuple[Stream, StreamCapture], tuple[Stream, StreamCapture]]:
        return ("stdout", self.out), ("stderr", self.err)


class OutputPipeline:
    def __init__(
        self,
        task_id: int,
        result_ids: dict[str, int],
        *,
        settings: OutputSettings,
        db: Database,
        bus: Bus,
        listener: Listener | None = None,
    ) -> None:
        self.task_id = task_id
        self.settings = settings
        self.db = db
        self.bus = bus
        self.topic = topic(task_id)
        self.listener = listener
        self.seq = 0
        self.hosts = {name: _Host(name, rid, settings) for name, rid in result_ids.items()}
        self.counts: dict[str, int] = {}
        #: archive rows not yet written, and result updates keyed by result id
        self.pending: list[Archived] = []
        #: the batch a flush is writing now: not in ``pending`` any more, not committed yet
        self._inflight: list[Archived] = []
        self._starts: list[Params] = []
        self._dones: list[Params] = []
        #: hosts whose tail took lines since the last flush, and archived tail lines to remove
        self._tails: set[_Host] = set()
        self._cuts: list[Params] = []
        #: result updates of running hosts whose tail cuts: where the cut is and how big, for a crash
        self._marks: list[Params] = []
        self._stamp = Stamper()
        #: the last ``at`` text the archive converted, and its datetime (a batch's lines share most of them)
        self._at: tuple[str, datetime] = ("", datetime.now(UTC))
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False

    # -- the hot path: synchronous, one call per engine event -------------------------------------

    def emit(self, ev: Event) -> None:
        if isinstance(ev, HostOutput):
            self._output(ev)
        elif isinstance(ev, HostStarted):
            self._started(ev)
        elif isinstance(ev, HostDone):
            self._done(ev)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _publish(self, event: _W) -> _W:
        self.bus.publish(self.topic, event)
        if self.listener is not None:
            try:
                self.listener(event)
            except Exception:  # the CLI's printer (stdout a closed pipe): never at the archive's expense
                log.warning("task %s: the output listener failed; it gets no more events", self.task_id,
                            exc_info=True)
                self.listener = None
        return event

    def _output(self, ev: HostOutput) -> None:
        h = self.hosts[ev.host]
        line = self._publish(wire.line(ev.host, ev.stream, ev.text, self._stamp(time.time()), self._next()))
        cap = h.out if ev.stream == "stdout" else h.err
        if cap.add(line["seq"], ev.text, ev.size, ev.cut, line["at"]):
            self.pending.append(line)
        else:
            self._tails.add(h)
        if self.settings.full_log_dir:
            self._full_log(ev.host, h).write(f"{ev.stream[3]} {ev.text}\n")

    def _started(self, ev: HostStarted) -> None:
        h = self.hosts[ev.host]
        h.started = ev.at
        self.pending.append(self._publish(wire.start(ev.host, self._stamp(ev.at), self._next())))
        self._starts.append({"rid": h.result_id, "status": HostStatus.RUNNING.value, "started_at": _ts(ev.at)})

    def _take_tails(self, h: _Host, *, running: bool = True) -> None:
        """Move what changed in a host's tails into the next batch (see StreamCapture.take_tail).

        While the host runs, a grown cut is also written to its result row (``<stream>_cut``, and at
        the first cut the head, one line per newline), so that if this process dies the recovery can
        put the cut marker between head and tail (``service._interrupt``): once per host, the head;
        after that, one number per flush.
        """
        for stream, cap in h.captures():
            new, gone = cap.take_tail()
            if gone is not None:
                self._cuts.append({"tid": self.task_id, "h": h.name, "st": stream, "lo": gone[0], "hi": gone[1]})
            self.pending.extend(wire.line(h.name, stream, text, at, seq) for seq, text, at in new)
            if running and cap.cut_bytes > h.marked[stream]:
                mark: Params = {"rid": h.result_id, f"{stream}_cut": cap.cut_bytes}
                if not h.marked[stream]:
                    mark[stream] = "".join(f"{line}\n" for line in cap.head)
                h.marked[stream] = cap.cut_bytes
                self._marks.append(mark)

    def _done(self, ev: HostDone) -> None:
        h = self.hosts[ev.host]
        self._tails.discard(h)
        self._take_tails(h, running=False)
        for of, cap in h.captures():
            if cap.cut_lines:
                self.pending.append(self._publish(wire.cut(self._next(), ev.host, self._stamp(ev.finished), of=of,
                                                           lines=cap.cut_lines, bytes=cap.cut_bytes)))
        started = h.started if h.started is not None else ev.started
        self.pending.append(self._publish(wire.done(
            self._next(), ev.host, self._stamp(ev.finished), status=ev.status.value, exit_code=ev.exit_code,
            reason=ev.reason, duration=round(ev.finished - started, 3))))
        stdout, stderr = h.out.text(), h.err.text()
        # of everything the host printed, not only the head and tail kept
        digest = hashlib.blake2b(f"{ev.exit_code}\0".encode() + h.out.digest() + h.err.digest(), digest_size=8).hexdigest()
        if h.full is not None:
            h.full.close()
        self._dones.append({
            "rid": h.result_id, "status": ev.status.value, "reason": ev.reason, "exit_code": ev.exit_code,
            "started_at": _ts(started), "finished_at": _ts(ev.finished), "duration": ev.finished - started,
            "stdout": stdout, "stderr": stderr, "stdout_bytes": h.out.total, "stderr_bytes": h.err.total,
            "stdout_cut": h.out.cut_total, "stderr_cut": h.err.cut_total, "output_digest": digest,
            "full_log": h.full_path,
        })
        self.counts[ev.status.value] = self.counts.get(ev.status.value, 0) + 1
        # free the captured output now: the update above holds what the archive needs
        h.out = h.err = StreamCapture(0, 0)
        if len(self.pending) > 5000:
            self._wake.set()

    def _full_log(self, host: str, h: _Host) -> TextIO:
        if h.full is None:
            folder = Path(self.settings.full_log_dir or ".") / str(self.task_id)
            h.full_path = str(folder / f"{host}.log.gz")
            # a host's whole output may hold what the archive cut: 0600 in 0700 folders, from creation
            if not private.make_file(h.full_path):
                private.narrow(h.full_path)
            h.full = gzip.open(h.full_path, "wt", encoding="utf-8", compresslevel=6)  # noqa: SIM115
        return h.full

    # -- the archive side --------------------------------------------------------------------------

    def pending_after(self, seq: int) -> list[Archived]:
        """Events not yet archived with a sequence above ``seq``, in order (for viewers catching up).

        Includes the batch being written: a viewer whose archive read runs before that write commits
        would otherwise never see those events (they are no longer pending, not yet archived, and
        were published before it subscribed). Includes the tail lines that running hosts keep and the
        archive has not taken yet, too; a viewer that was away while a tail cut lines does not get
        those (the archive does not keep them either), and the host's ``cut`` event counts them.
        """
        kept: list[Archived] = []
        for h in self._tails:
            for stream, cap in h.captures():
                kept.extend(wire.line(h.name, stream, t, at, s) for s, t, at in cap.untaken() if s > seq)
        return sorted((w for w in (*self._inflight, *self.pending, *kept) if w["seq"] > seq),
                      key=lambda w: w["seq"])

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"flush-task-{self.task_id}")

    async def _flush_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("task %s: archiving output failed; will retry", self.task_id)
                await asyncio.sleep(1.0)

    async def flush(self) -> None:
        for h in self._tails:
            self._take_tails(h)
        self._tails.clear()
        rows, starts, dones, cuts, marks = self.pending, self._starts, self._dones, self._cuts, self._marks
        if not (rows or starts or dones or cuts or marks):
            return
        self.pending, self._starts, self._dones, self._cuts, self._marks = [], [], [], [], []
        self._inflight = rows
        try:
            async with self.db.session.begin() as s:
                conn = await s.connection()  # Core on the session's transaction: no ORM bookkeeping per row
                if rows:
                    task_id = self.task_id
                    when = self._when
                    await conn.execute(_INSERT_OUTPUT, [
                        {"task_id": task_id, "seq": w["seq"], "host_name": w["host"], "stream": w["stream"],
                         "data": w["text"], "at": when(w["at"])} for w in rows
                    ])
                if starts:
                    await conn.execute(_UPDATE_RESULT, starts)
                for same in _by_columns(marks):  # before the dones: a host's done overwrites its marks
                    await conn.execute(_UPDATE_RESULT, same)
                if dones:
                    await conn.execute(_UPDATE_RESULT, dones)
                if cuts:  # after the INSERT: a line taken in this batch may be cut already
                    await conn.execute(_DELETE_CUT, cuts)
                await conn.execute(_UPDATE_TASK, {"tid": self.task_id, "last_seq": self.seq})
        except Exception:
            # put them back in front, in order, so nothing is lost
            self.pending[:0] = rows
            self._starts[:0] = starts
            self._dones[:0] = dones
            self._cuts[:0] = cuts
            self._marks[:0] = marks
            raise
        finally:
            self._inflight = []

    def _when(self, at: str) -> datetime:
        """The archive's datetime of an event's ``at`` text."""
        if at != self._at[0]:
            self._at = (at, datetime.fromisoformat(at))
        return self._at[1]

    async def close(self) -> None:
        """Stop the flusher and write everything still pending."""
        self._closing = True
        self._wake.set()
        if self._flusher is not None:
            await self._flusher
        for h in self.hosts.values():
            if h.full is not None and not h.full.closed:
                h.full.close()
        for attempt in range(5):
            try:
                await self.flush()
                return
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
