"""Task lifecycle: create, queue, run on the engine, cancel, and recover after a crash.

A task resolves its target to hosts, is written with one pending result per host, then waits in a
FIFO queue until the engine has a free session slot. Running, its events go through an
``OutputPipeline``; finished, its status follows from its hosts'. Tasks left running by a process
that died are marked ``interrupted`` at the next start, keeping what they had printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smallyi.audit.trail import AuditTrail
from smallyi.auth.caller import Caller
from smallyi.auth.gate import CommandGate, Held
from smallyi.auth.rbac import HostScope
from smallyi.bus.base import Bus, Subscription
from smallyi.config import Settings
from smallyi.durations import check_timeout
from smallyi.errors import Conflict, InputError, NotFound
from smallyi.execution import wire
from smallyi.execution.engine import Engine, Job
from smallyi.execution.events import Event, HostDone
from smallyi.execution.wire import Archived
from smallyi.inventory.selectors import Selector
from smallyi.inventory.service import InventoryService
from smallyi.policy import command_text
from smallyi.runners import ProcessState, process_state, runner_kind
from smallyi.storage.db import Database
from smallyi.storage.models import Result, Task, TaskOutput, utcnow
from smallyi.tasks.pipeline import Listener, OutputPipeline, topic
from smallyi.tasks.queries import host_in_scope
from smallyi.types import HostStatus, TaskStatus, task_status_from_hosts

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """What to run where; ``None`` limits take the configured defaults."""

    selector: Selector
    command: str
    timeout: float | None = None
    concurrency: int | None = None
    rate: float = 0.0
    #: the task's own notification, ``notify.tasks.task_notify`` shape (channels already checked by the caller)
    notify: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON kept in an approval request, for :meth:`from_dict` to run it once approved."""
        return {"target": self.selector.to_dict(), "timeout": self.timeout, "concurrency": self.concurrency,
                "rate": self.rate, **({"notify": dict(self.notify)} if self.notify else {})}

    @classmethod
    def from_dict(cls, command: str, d: Mapping[str, Any]) -> TaskRequest:
        """``command`` with the rest of a request :meth:`to_dict` kept (its other keys are ignored)."""
        t = d.get("target") or {}
        selector = Selector.from_dict(t)
        return cls(selector, command, timeout=d.get("timeout"), concurrency=d.get("concurrency"),
                   rate=float(d.get("rate") or 0.0), notify=d.get("notify"))


@dataclass(frozen=True, slots=True)
class Queued:
    """A submitted task: created and queued (or already running)."""

    task_id: int


@dataclass(eq=False)
class _Run:
    task_id: int
    job: Job
    pipeline: OutputPipeline
    done: asyncio.Event = field(default_factory=asyncio.Event)
    shutting_down: bool = False
    status: TaskStatus = TaskStatus.QUEUED
    user: str = ""


class TaskService:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        bus: Bus,
        engine: Engine,
        inventory: InventoryService,
        runner: str,
        gate: CommandGate | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.engine = engine
        self.inventory = inventory
        self.runner = runner
        #: RBAC scope, command policy and approvals, checked before a task is created (None: unchecked)
        self.gate = gate
        self.audit = audit
        self._queue: deque[_Run] = deque()
        self._running: dict[int, _Run] = {}
        self._runs: dict[int, _Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None

    # -- creating and running --------------------------------------------------------------------

    async def submit(self, req: TaskRequest, caller: Caller, *, listener: Listener | None = None,
                     approved_by: str = "") -> Queued | Held:
        """Create the task and queue it; answers at once (it runs in the background).

        With a gate, ``caller.principal`` (None: an in-process caller with full rights) must be allowed
        to run the command on every target host; the policy may refuse it (PolicyDenied) or hold it for
        approval (:class:`Held`: no task exists). ``approved_by`` submits an approved request (as
        ``caller.role``).
        """
        user, principal, client = caller.user, caller.principal, caller.client
        command = command_text.check(req.command, field="cmd").strip()  # every caller: API, CLI, SOPs, schedules
        if not command:
            raise InputError("the command is empty", field="cmd")
        if len(command.encode()) > MAX_COMMAND_BYTES:
            raise InputError(f"the command is longer than {MAX_COMMAND_BYTES} bytes", field="cmd")
        ex = self.settings.execution
        timeout = ex.default_timeout if req.timeout is None else check_timeout(req.timeout, field="timeout")
        concurrency = req.concurrency or ex.default_concurrency
        if concurrency < 1:
            raise InputError("concurrency must be at least 1", field="concurrency")
        if req.rate < 0:
            raise InputError("rate must not be negative", field="rate")
        hosts = await self.inventory.resolve(req.selector)
        if self.gate is not None:
            verdict = await self.gate.check(command, hosts, caller, approved_by=approved_by, request=req.to_dict())
            if isinstance(verdict, Held):
                return verdict
        async with self.db.session.begin() as s:
            task = Task(
                kind="command", command=req.command, target=req.selector.to_dict(), status=TaskStatus.QUEUED.value,
                created_by=user, runner=self.runner, timeout=timeout, concurrency=concurrency, rate=req.rate,
                host_count=len(hosts), notify=dict(req.notify or {}),
            )
            s.add(task)
            await s.flush()
            rows = await s.execute(
                insert(Result).returning(Result.id, Result.host_name),
                [{"task_id": task.id, "host_name": h.name, "address": h.address,
                  "status": HostStatus.PENDING.value} for h in hosts],
            )
            result_ids = {name: rid for rid, name in rows.all()}
            task_id = task.id
        pipeline = OutputPipeline(
            task_id, result_ids, settings=self.settings.output, db=self.db, bus=self.bus, listener=listener
        )
        job = Job(hosts=hosts, command=req.command, timeout=timeout, concurrency=concurrency, rate=req.rate)
        run = _Run(task_id, job, pipeline, user=user)
        self._runs[task_id] = run
        self._queue.append(run)
        log.info("task %s queued by %s: %d hosts (%s)", task_id, user, len(hosts), req.selector.describe())
        if self.audit is not None:
            await self.audit.record(
                "task.create", actor=user, client=client, target=req.selector.describe(), perm="tasks.run",
                source="api" if principal is not None else None,
                detail={"task": task_id, "command": req.command, "hosts": len(hosts),
                        **({"approved_by": approved_by} if approved_by else {})},
            )
        self._dispatch()
        return Queued(task_id)

    def _dispatch(self) -> None:
        """Start queued tasks, first come first served, while the engine has free session slots."""
        while self._queue and (not self._running or self.engine.free_slots > 0):
            run = self._queue.popleft()
            self._running[run.task_id] = run
            self._spawn(self._execute(run))
        if (self._queue or self._running) and self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        """While tasks wait or run: admit queued ones, and act on cancel requests from other processes."""
        polled = 0.0
        try:
            while self._queue or self._running:
                await asyncio.sleep(0.1)
                self._dispatch()
                polled += 0.1
                if polled >= 0.5 and self._running:
                    polled = 0.0
                    await self._poll_cancels()
        finally:
            self._ticker = None

    async def _poll_cancels(self) -> None:
        ids = list(self._running)
        try:
            async with self.db.session() as s:
                rows = (await s.execute(
                    select(Task.id, Task.cancel_requested).where(Task.id.in_(ids), Task.cancel_requested != "")
                )).all()
        except Exception:
            log.exception("checking for cancel requests failed")
            return
        for tid, who in rows:
            run = self._running.get(tid)
            if run is not None and not run.job.cancel.is_set():
                log.info("task %s cancelled by %s (from another process)", tid, who)
                run.job.cancel.set()

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _execute(self, run: _Run) -> None:
        try:
            run.status = TaskStatus.RUNNING
            await self._set(run.task_id, status=TaskStatus.RUNNING.value, started_at=utcnow())
            run.pipeline.start()

            def emit(ev: Event) -> None:
                if run.shutting_down and isinstance(ev, HostDone) and ev.status is HostStatus.CANCELLED:
                    ev = dataclasses.replace(ev, status=HostStatus.INTERRUPTED, reason="the server shut down")
                run.pipeline.emit(ev)

            try:
                await self.engine.run(run.job, emit)
            finally:
                await run.pipeline.close()
            await self._finish(run)
        except Exception:
            log.exception("task %s failed inside small-yi", run.task_id)
            with contextlib.suppress(Exception):
                await self._set(run.task_id, status=TaskStatus.FAILED.value, finished_at=utcnow(),
                                reason="internal error; see the server log")
        finally:
            self._running.pop(run.task_id, None)
            self._runs.pop(run.task_id, None)
            run.done.set()
            self.bus.close_topic(topic(run.task_id))
            self._dispatch()

    async def _finish(self, run: _Run) -> None:
        counts = run.pipeline.counts
        status = task_status_from_hosts(HostStatus(k) for k, n in counts.items() if n)
        missing = len(run.job.hosts) - sum(counts.values())
        reason = ""
        if missing > 0:
            # the engine promises one HostDone per host; if that broke, say so rather than succeed
            status, reason = TaskStatus.FAILED, f"internal error: {missing} host(s) got no result; see the server log"
        run.status = status
        await self._set(run.task_id, status=status.value, finished_at=utcnow(), counts=counts,
                        last_seq=run.pipeline.seq, reason=reason)
        self.bus.publish(topic(run.task_id), wire.end(status.value, counts))
        log.info("task %s %s: %s", run.task_id, status.value, counts)
        if self.audit is not None:
            await self.audit.safe_record("task.finish", actor=run.user, target=f"task {run.task_id}",
                                         result=status.value, detail={"task": run.task_id, "counts": counts})

    async def _set(self, task_id: int, **values: Any) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(Task).where(Task.id == task_id).values(**values))

    async def wait(self, task_id: int) -> None:
        run = self._runs.get(task_id)
        if run is not None:
            await run.done.wait()

    # -- cancel, queue, shutdown -----------------------------------------------------------------

    async def cancel(self, task_id: int, *, user: str) -> str:
        """Cancel a queued or running task; returns what happened.

        A task run by another process (the CLI, another replica) gets a cancel request in the
        database, which that process acts on within about half a second.
        """
        run = self._runs.get(task_id)
        if self.audit is not None and user != "shutdown":
            await self.audit.safe_record("task.cancel", actor=user, target=f"task {task_id}", perm="tasks.cancel")
        if run is None:
            return await request_cancel(self.db, task_id, user=user)
        log.info("task %s cancelled by %s", task_id, user)
        if run in self._queue:
            self._queue.remove(run)
            async with self.db.session.begin() as s:
                await s.execute(update(Result).where(Result.task_id == task_id)
                                .values(status=HostStatus.CANCELLED.value, reason=f"cancelled by {user} while queued"))
                await s.execute(update(Task).where(Task.id == task_id).values(
                    status=TaskStatus.CANCELLED.value, finished_at=utcnow(),
                    counts={HostStatus.CANCELLED.value: len(run.job.hosts)}))
            self._runs.pop(task_id, None)
            run.done.set()
            self.bus.publish(topic(task_id), wire.end(TaskStatus.CANCELLED.value, {}))
            self.bus.close_topic(topic(task_id))
            return "cancelled while queued"
        run.job.cancel.set()
        return "cancelling"

    def queue_position(self, task_id: int) -> int | None:
        for i, run in enumerate(self._queue):
            if run.task_id == task_id:
                return i + 1
        return None

    def live(self, task_id: int) -> OutputPipeline | None:
        run = self._runs.get(task_id)
        return run.pipeline if run is not None else None

    async def close(self) -> None:
        """Stop: queued tasks are cancelled, running ones interrupted; everything is archived."""
        for run in list(self._queue):
            await self.cancel(run.task_id, user="shutdown")
        for run in list(self._running.values()):
            run.shutting_down = True
            run.job.cancel.set()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    # -- live output and replay ------------------------------------------------------------------

    def subscribe(self, task_id: int, after: int) -> tuple[Subscription | None, list[Archived]]:
        """A live subscription (None if the task is not running here) and the unarchived events after ``after``.

        Taken together, synchronously, so that no event falls between the archive and the live feed.
        """
        run = self._runs.get(task_id)
        if run is None:
            return None, []
        sub = self.bus.subscribe(topic(task_id))
        return sub, run.pipeline.pending_after(after)

    async def archived_events(self, task_id: int, after: int, limit: int = 5000, *, scope: HostScope) -> list[Archived]:
        """Archived output events after ``after``, of hosts in ``scope`` only."""
        return await archived_events(self.db, task_id, after, limit, scope=scope)

    # -- recovery --------------------------------------------------------------------------------

    async def recover(self, *, alive: Callable[[str], bool] | None = None) -> list[int]:
        """Mark tasks whose runner is gone ``interrupted`` (their unfinished hosts too); returns their ids.

        ``alive(runner) -> bool`` says whether a runner still runs; the default treats every server
        runner as gone (this server is starting) and a CLI runner as gone if its pid is not alive here.
        """
        check = alive or _runner_alive
        async with self.db.session.begin() as s:
            rows = (await s.execute(
                select(Task.id, Task.runner).where(Task.status.in_([TaskStatus.QUEUED.value, TaskStatus.RUNNING.value]))
            )).all()
            ids = [tid for tid, runner in rows if runner != self.runner and not check(runner)]
            for tid in ids:
                await _interrupt(s, tid)
        if ids:
            log.warning("marked %d task(s) left unfinished by a stopped process as interrupted: %s", len(ids), ids)
        return ids


async def request_cancel(db: Database, task_id: int, *, user: str) -> str:
    """Ask whichever process runs a task to cancel it (through the database)."""
    async with db.session.begin() as s:
        task = await s.get(Task, task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        if TaskStatus(task.status).final:
            raise Conflict(f"task {task_id} already finished ({task.status})")
        task.cancel_requested = user
        runner = task.runner
    log.info("task %s: cancel requested by %s for runner %s", task_id, user, runner)
    return "cancel requested"


async def _interrupt(s: AsyncSession, task_id: int) -> None:
    reason = "small-yi stopped before the host finished"
    unfinished = (await s.execute(
        select(Result.id, Result.host_name, Result.stdout, Result.stderr, Result.stdout_cut, Result.stderr_cut)
        .where(Result.task_id == task_id, Result.status.in_([HostStatus.PENDING.value, HostStatus.RUNNING.value]))
    )).all()
    if unfinished:
        names = {r.host_name: r for r in unfinished}
        out: dict[str, dict[str, list[str]]] = {n: {"stdout": [], "stderr": []} for n in names}
        rows = await s.execute(
            select(TaskOutput.host_name, TaskOutput.stream, TaskOutput.data)
            .where(TaskOutput.task_id == task_id, TaskOutput.stream.in_(["stdout", "stderr"]))
            .order_by(TaskOutput.seq)
        )
        for host, stream, data in rows:
            if host in out:
                out[host][stream].append(data)
        await s.execute(update(Result), [
            {"id": r.id, "status": HostStatus.INTERRUPTED.value, "reason": reason,
             "stdout": interrupted_text(out[name]["stdout"], r.stdout, r.stdout_cut),
             "stderr": interrupted_text(out[name]["stderr"], r.stderr, r.stderr_cut)}
            for name, r in names.items()
        ])
    counts: dict[str, int] = {}
    for (st,) in (await s.execute(select(Result.status).where(Result.task_id == task_id))).all():
        counts[st] = counts.get(st, 0) + 1
    await s.execute(update(Task).where(Task.id == task_id).values(
        status=TaskStatus.INTERRUPTED.value, finished_at=utcnow(), counts=counts, reason=reason))


def interrupted_text(lines: list[str], head: str, cut: int) -> str:
    """An interrupted host's archived lines, with the cut marker where its tail had cut the middle.

    ``head`` and ``cut`` are what the pipeline wrote to the result row while the host ran: its head
    (one line per newline; the first ``head.count("\\n")`` archived lines) and the bytes cut so far.
    The line count of the cut is not kept until the host ends, so the marker gives bytes only.
    """
    if cut <= 0:
        return "\n".join(lines)
    n = head.count("\n")
    return "\n".join([*lines[:n], f"... [{cut} bytes cut] ...", *lines[n:]])


def _runner_alive(runner: str) -> bool:
    """A CLI process still running here keeps its tasks; any server runner is this server's past."""
    return runner_kind(runner) == "cli" and process_state(runner) is ProcessState.ALIVE


async def archived_events(db: Database, task_id: int, after: int, limit: int = 5000, *,
                          scope: HostScope) -> list[Archived]:
    """A task's archived output events after ``after``, of hosts in ``scope`` only, in order."""
    async with db.session() as s:
        rows = await s.execute(
            select(TaskOutput.seq, TaskOutput.host_name, TaskOutput.stream, TaskOutput.data, TaskOutput.at)
            .where(TaskOutput.task_id == task_id, TaskOutput.seq > after, host_in_scope(TaskOutput.host_name, scope))
            .order_by(TaskOutput.seq).limit(limit)
        )
        return [wire.from_row(seq, host, stream, data, at) for seq, host, stream, data, at in rows]
