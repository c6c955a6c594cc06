"""Running one SOP: start every step whose needs are done (independent branches in parallel),
record each as it goes, stop or go on after failures, and finish the run.

A step starts once each step it needs has succeeded, been skipped, or failed under
``on_failure: continue``. A failure under ``stop`` (the default) lets running host steps finish,
stops waits and approvals, and skips what had not started; ``{run: handler}`` also runs the handler
step first. A cancel stops everything, remote commands included. If the process stops while only
waits and approvals are in flight, the run is left to be resumed; otherwise it is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from smallyi.errors import SmallYiError
from smallyi.notify import templates
from smallyi.notify.base import Message
from smallyi.sop import context, dag
from smallyi.sop.expr import compile_template
from smallyi.sop.model import Step
from smallyi.sop.records import topic
from smallyi.sop.statuses import FINAL_STEP, SopRunStatus, SopStepStatus
from smallyi.sop.steps import HANDLERS, RESUMABLE
from smallyi.sop.steps.base import Deps, Outcome, RunSpec, StepCall
from smallyi.storage.models import utcnow
from smallyi.timestamps import iso

log = logging.getLogger(__name__)

#: how often the run looks for a cancel request, and renews its lease
POLL = 0.5
HEARTBEAT = 5.0
#: step types whose ``timeout`` bounds the whole handler (host steps pass it to their tasks; waits and
#: approvals use it themselves)
_BOUNDED = frozenset({"http", "notify", "ticket", "if", "sop"})
#: attempt outcomes a retry cannot change
_NO_RETRY = frozenset({SopStepStatus.SUCCESS, SopStepStatus.SKIPPED, SopStepStatus.CANCELLED})


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class Runner:
    def __init__(self, deps: Deps, spec: RunSpec, *, resume: bool = False) -> None:
        self.deps = deps
        self.spec = spec
        self.records = deps.records
        self.sop = spec.sop
        self.plan = dag.plan(spec.sop)
        self.resume = resume
        self.status: dict[str, SopStepStatus] = {s.id: SopStepStatus.PENDING for s in spec.sop.steps}
        self.results: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.running: dict[str, asyncio.Task[None]] = {}
        #: cancel: everything stops (remote commands too); halt: waits and approvals stop
        self.cancel = asyncio.Event()
        self.halt = asyncio.Event()
        self.stop_reason = ""
        #: how the run ends, once something decided it (a failure under ``stop``, a cancel, the timeout)
        self.final: SopRunStatus | None = None
        self.seq = 0
        self._handlers_run: set[str] = set()
        self.task_ids: dict[str, list[int]] = {}
        self._events = asyncio.Lock()

    # -- events and records ------------------------------------------------------------------------

    async def emit(self, kind: str, step: str = "", data: Mapping[str, Any] | None = None) -> None:
        # one at a time: events reach the database in sequence order, so a follower reading "after N"
        # never passes over one committed late
        async with self._events:
            self.seq += 1
            try:
                await self.records.event(self.spec.run_id, self.seq, kind, step, data)
            except Exception:
                log.exception("SOP run %s: recording event %s failed", self.spec.run_id, kind)

    def stop(self, reason: str, final: SopRunStatus = SopRunStatus.FAILED) -> None:
        if self.final is None:
            self.stop_reason, self.final = reason, final
        self.halt.set()
        if final is SopRunStatus.CANCELLED:
            self.cancel.set()

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> tuple[SopRunStatus, str]:
        """Run to the end; returns (status, reason). Cancelling this coroutine pauses or interrupts the run."""
        rid = self.spec.run_id
        if self.resume:
            await self._load()
        else:
            await self.records.set_run(rid, started_at=utcnow(), heartbeat_at=utcnow())
            await self.emit("run.start", data={"sop": self.sop.name, "started_by": self.spec.started_by,
                                               "waves": [list(w) for w in self.plan.waves]})
        try:
            if self.sop.timeout:
                try:
                    async with asyncio.timeout(self.sop.timeout):
                        await self._loop()
                except TimeoutError:
                    self.stop(f"the run timed out after {self.sop.timeout:g}s", SopRunStatus.FAILED)
                    self.cancel.set()
                    await self._loop()
            else:
                await self._loop()
        except asyncio.CancelledError:
            await asyncio.shield(self._paused())
            raise
        return await self._finish()

    async def _loop(self) -> None:
        last_beat = time.monotonic()
        while True:
            if self.final is None:
                self._start_ready()
            if not self.running:
                return
            await asyncio.wait(list(self.running.values()), timeout=POLL, return_when=asyncio.FIRST_COMPLETED)
            for sid, task in list(self.running.items()):
                if task.done():
                    del self.running[sid]
                    if not task.cancelled() and task.exception() is not None:
                        log.error("SOP run %s step %s failed inside small-yi", self.spec.run_id, sid,
                                  exc_info=task.exception())
            await self._check_cancel()
            if time.monotonic() - last_beat > HEARTBEAT:
                last_beat = time.monotonic()
                with contextlib.suppress(Exception):
                    await self.records.set_run(self.spec.run_id, heartbeat_at=utcnow())

    def _done(self, sid: str) -> bool:
        st = self.status[sid]
        if st in (SopStepStatus.SUCCESS, SopStepStatus.SKIPPED):
            return True
        return st.failure and self.sop.step(sid).on_failure.mode == "continue"

    def _start_ready(self) -> None:
        limit = self.deps.settings.sop.max_parallel
        for sid in self.plan.order:
            if len(self.running) >= limit:
                return
            if self.status[sid] is SopStepStatus.PENDING and all(self._done(n) for n in self.plan.needs[sid]):
                self._spawn(self.sop.step(sid))

    def _spawn(self, step: Step, *, failed: str | None = None) -> None:
        self.status[step.id] = SopStepStatus.RUNNING
        self.running[step.id] = asyncio.create_task(self._step(step, failed=failed),
                                                    name=f"sop-{self.spec.run_id}-{step.id}")

    async def _check_cancel(self) -> None:
        if self.final is SopRunStatus.CANCELLED:
            return
        try:
            row = await self.records.run(self.spec.run_id)
        except Exception:
            return
        if row.cancel_requested:
            self.stop(f"cancelled by {row.cancel_requested}", SopRunStatus.CANCELLED)
            await self.emit("run.cancelling", data={"by": row.cancel_requested})

    # -- one step ------------------------------------------------------------------------------

    def _context(self, step: Step, *, failed: str | None) -> dict[str, Any]:
        """What the step's expressions read (``context.build``): results, variables, the run, of any shape."""
        dot = failed if failed else (step.needs[0] if step.needs else None)
        extra = {"failed_step": {"id": failed, **self.results.get(failed, {})}} if failed else None
        return context.build(results=self.results, dot=dot, vars=self.spec.vars, env=self.spec.env,
                             environment=self.spec.environment, run=self.spec.run_fields(), extra=extra)

    async def _step(self, step: Step, *, failed: str | None = None) -> None:
        """Run one step to its recorded end; a fault inside small-yi fails the step, never hangs the run."""
        try:
            await self._run_step(step, failed=failed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("SOP run %s step %s failed inside small-yi", self.spec.run_id, step.id)
            reason = f"internal error: {exc!r}; see the server log"
            self.status[step.id] = SopStepStatus.FAILED
            self.results[step.id] = {"status": SopStepStatus.FAILED, "reason": reason}
            with contextlib.suppress(Exception):
                await self.records.set_step(self.spec.run_id, step.id, status=SopStepStatus.FAILED, reason=reason)
            if failed is None:
                self._after_failure(step, Outcome(SopStepStatus.FAILED, {}, reason))

    async def _run_step(self, step: Step, *, failed: str | None) -> None:
        rid, sid = self.spec.run_id, step.id
        started = self.started.get(sid) or time.time()
        self.started[sid] = started
        await self.records.set_step(rid, sid, status=SopStepStatus.RUNNING, started_at=_ts(started))
        await self.emit("step.start", sid, {"type": step.type})
        ctx = self._context(step, failed=failed)
        outcome, attempts, task_ids = await self._attempts(step, ctx, started)
        result = {**outcome.result, "status": outcome.status, "reason": outcome.reason, "attempts": attempts}
        if outcome.status is SopStepStatus.SUCCESS and step.outputs:
            outcome = self._outputs(step, ctx, result, outcome)
            result.update(status=outcome.status, reason=outcome.reason)
        finished = time.time()
        result.update(started_at=iso(_ts(started)), finished_at=iso(_ts(finished)),
                      duration=round(finished - started, 3))
        self.results[sid] = result
        self.status[sid] = outcome.status
        await self.records.set_step(rid, sid, status=outcome.status, reason=outcome.reason, result=result,
                                    attempts=attempts, task_ids=task_ids, finished_at=_ts(finished),
                                    duration=finished - started)
        await self.emit("step.finish", sid, {"status": outcome.status, "reason": outcome.reason,
                                             "duration": round(finished - started, 3)})
        if outcome.status.failure and failed is None:
            self._after_failure(step, outcome)

    async def _attempts(self, step: Step, ctx: dict[str, Any], started: float) -> tuple[Outcome, int, list[int]]:
        if step.when:
            try:
                if not self._when(step, ctx):
                    return Outcome(SopStepStatus.SKIPPED, {}, "when: the condition was false"), 0, []
            except SmallYiError as exc:
                return Outcome(SopStepStatus.FAILED, {}, f"when: {exc.message}"), 0, []
        previous: dict[str, Any] | None = None
        task_ids: list[int] = []
        attempt = 0
        while True:
            attempt += 1
            call = StepCall(self.deps, self.spec, step, ctx, attempt,
                            self.halt if step.type in RESUMABLE else self.cancel, self._step_emit(step.id),
                            previous=previous if step.on_hosts else None, started_at=started)
            await self.records.set_step(self.spec.run_id, step.id, attempts=attempt)
            outcome = await self._call(step, call)
            task_ids += call.task_ids
            if outcome.status in _NO_RETRY or attempt > step.retries or self.final is not None:
                return outcome, attempt, task_ids
            await self.emit("step.retry", step.id, {"attempt": attempt, "reason": outcome.reason,
                                                    "delay": step.retry_delay})
            previous = outcome.result
            if step.retry_delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cancel.wait(), timeout=step.retry_delay)

    def _when(self, step: Step, ctx: dict[str, Any]) -> bool:
        assert step.when is not None
        return compile_template(step.when, bare=True).test(ctx)

    def _step_emit(self, sid: str) -> Any:
        async def emit(kind: str, data: Mapping[str, Any]) -> None:
            await self.emit(kind, sid, data)
            if kind == "step.task":
                ids = self.task_ids.setdefault(sid, [])
                ids.append(int(data["task_id"]))
                with contextlib.suppress(Exception):
                    await self.records.set_step(self.spec.run_id, sid, task_ids=list(ids))
            if kind == "step.waiting":
                await self.records.set_step(self.spec.run_id, sid, status=SopStepStatus.WAITING)
            elif kind == "step.resumed":  # a host step held by the command policy was approved
                await self.records.set_step(self.spec.run_id, sid, status=SopStepStatus.RUNNING)
        return emit

    async def _call(self, step: Step, call: StepCall) -> Outcome:
        try:
            if step.type in _BOUNDED and step.timeout:
                async with asyncio.timeout(step.timeout):
                    return await HANDLERS[step.type](call)
            return await HANDLERS[step.type](call)
        except TimeoutError:
            return Outcome(SopStepStatus.TIMEOUT, {}, f"timed out after {step.timeout:g}s")
        except SmallYiError as exc:
            return Outcome(SopStepStatus.FAILED, {}, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("SOP run %s step %s failed inside small-yi", self.spec.run_id, step.id)
            return Outcome(SopStepStatus.FAILED, {}, f"internal error: {exc!r}; see the server log")

    def _outputs(self, step: Step, ctx: dict[str, Any], result: dict[str, Any], outcome: Outcome) -> Outcome:
        own = {**ctx, **result}
        values: dict[str, Any] = {}
        for name, expr in step.outputs.items():
            try:
                values[name] = compile_template(expr, bare=True).evaluate(own)
            except SmallYiError as exc:
                result["outputs"] = values
                return Outcome(SopStepStatus.FAILED, result, f"outputs.{name}: {exc.message}")
        result["outputs"] = values
        return outcome

    def _after_failure(self, step: Step, outcome: Outcome) -> None:
        why = f"step {step.id} {outcome.status}" + (f": {outcome.reason}" if outcome.reason else "")
        mode = step.on_failure.mode
        if mode == "continue":
            return
        self.stop(why)
        handler = step.on_failure.step
        if mode == "run" and handler and handler not in self._handlers_run:
            self._handlers_run.add(handler)
            self._spawn(self.sop.step(handler), failed=step.id)

    # -- the end -------------------------------------------------------------------------------

    async def _finish(self) -> tuple[SopRunStatus, str]:
        rid = self.spec.run_id
        for sid, st in self.status.items():
            if st is SopStepStatus.PENDING:
                reason = "a handler runs only when its step fails" if sid in self.sop.handlers and not self.final \
                    else f"not started: {self.stop_reason}" if self.final else "not reached"
                self.status[sid] = SopStepStatus.SKIPPED
                await self.records.set_step(rid, sid, status=SopStepStatus.SKIPPED, reason=reason)
        status = self.final or SopRunStatus.SUCCESS
        counts: dict[str, int] = {}
        for st in self.status.values():
            counts[st.value] = counts.get(st.value, 0) + 1
        # the event first: a follower that sees the run final has then seen its last event too
        await self.emit("run.finish", data={"status": status, "reason": self.stop_reason, "counts": counts})
        await self.records.set_run(rid, status=status, reason=self.stop_reason, finished_at=utcnow(), counts=counts)
        self.deps.records.bus.close_topic(topic(rid))
        log.info("SOP run %s (%s) %s%s", rid, self.sop.name or "file", status,
                 f": {self.stop_reason}" if self.stop_reason else "")
        await self._notify(status)
        return status, self.stop_reason

    async def _paused(self) -> None:
        """The process is stopping: leave resumable runs for later, interrupt the rest."""
        rid = self.spec.run_id
        in_flight = [sid for sid, st in self.status.items() if st.in_flight]
        for t in self.running.values():
            t.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)
        try:
            if in_flight and all(self.sop.step(s).type in RESUMABLE for s in in_flight):
                await self.emit("run.paused", data={"waiting": in_flight})
                log.info("SOP run %s paused while %s wait(s); it resumes when small-yi starts again", rid,
                         ", ".join(in_flight))
                return
            for sid in in_flight:
                await self.records.set_step(rid, sid, status=SopStepStatus.INTERRUPTED,
                                            reason="small-yi stopped during the step")
            for sid, st in self.status.items():
                if st is SopStepStatus.PENDING:
                    await self.records.set_step(rid, sid, status=SopStepStatus.SKIPPED,
                                                reason="the run was interrupted")
            await self.emit("run.finish", data={"status": SopRunStatus.INTERRUPTED})
            await self.records.set_run(rid, status=SopRunStatus.INTERRUPTED, finished_at=utcnow(),
                                       reason="small-yi stopped during the run")
        except Exception:
            log.exception("SOP run %s: recording the interruption failed", rid)

    async def _load(self) -> None:
        """Pick a run up again: finished steps keep their results, waits and approvals start over."""
        rid = self.spec.run_id
        self.seq = await self.records.last_seq(rid)
        for row in await self.records.steps(rid):
            if row.step_id not in self.status:
                continue
            status = SopStepStatus(row.status)
            if status in FINAL_STEP:
                self.status[row.step_id] = status
                self.results[row.step_id] = dict(row.result)
            elif status.in_flight:
                self.status[row.step_id] = SopStepStatus.PENDING
                if row.started_at is not None:
                    self.started[row.step_id] = row.started_at.timestamp()
        await self.emit("run.resume", data={"runner": "resumed after a restart"})

    async def _notify(self, status: SopRunStatus) -> None:
        spec = self.sop.notify
        notify = self.deps.notify
        if spec is None or notify is None:
            return
        event = "success" if status is SopRunStatus.SUCCESS else "failure"
        if event not in spec.on and "finish" not in spec.on:
            return
        try:
            msg = self._message(status, event, spec.message)
            await notify.notify(spec.channels, msg, key=f"sop_run:{self.spec.run_id}:{event}",
                                subject=f"SOP run {self.spec.run_id}")
        except Exception:
            log.exception("SOP run %s: notifying failed", self.spec.run_id)

    def _message(self, status: SopRunStatus, event: str, custom: str | None) -> Message:
        steps = [{"id": s.id, "status": self.status[s.id], "reason": self.results.get(s.id, {}).get("reason", "")}
                 for s in self.sop.steps]
        tickets = [t for r in self.results.values() for t in
                   ([{"id": r["ticket_id"], "url": r.get("ticket_url", "")}] if r.get("ticket_id") else [])
                   + [{"id": t["ticket_id"], "url": t["url"]} for t in r.get("tickets", [])]]
        if custom:
            last = self.plan.order[-1] if self.plan.order else None
            ctx = context.build(results=self.results, dot=last, vars=self.spec.vars, env=self.spec.env,
                                environment=self.spec.environment, run={**self.spec.run_fields(), "status": status})
            text = compile_template(custom).render(ctx).strip()
            title, _, body = text.partition("\n")
            return Message(title=title or f"SOP run {self.spec.run_id} {status}", text=body, status=event,
                           event="sop_run", data={"run_id": self.spec.run_id, "status": status})
        data = {"sop": self.sop.name, "run_id": self.spec.run_id, "status": status,
                "started_by": self.spec.started_by, "trigger": self.spec.trigger,
                "environment": self.spec.environment, "reason": self.stop_reason, "steps": steps,
                "tickets": tickets, "duration": None}
        return templates.message("sop_run", data, status=event,
                                 configured=self.deps.settings.notify.templates)
