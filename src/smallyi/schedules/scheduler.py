"""The scheduler loop: find due slots, claim each with a unique row, launch, record how it ended.

Any number of schedulers (replicas) may run against one database: the INSERT of
``(schedule_id, slot)`` succeeds for exactly one of them, and only that one launches. Overlap is
judged from the database too (is the previous fire's task or SOP run still unfinished?), so it holds
across replicas and restarts.

A schedule acts with its owner's rights *as they are at the slot*: the owner's account is read at every
fire (``auth.accounts``). An owner who is disabled or gone from the config suspends the schedule: each
slot is recorded as ``suspended`` with the reason, and audited when that starts and when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from smallyi.audit.trail import AuditTrail
from smallyi.auth.accounts import Accounts
from smallyi.auth.caller import Caller
from smallyi.auth.gate import Held
from smallyi.auth.rbac import Access, Perm
from smallyi.config import NotifySettings, ScheduleSettings
from smallyi.errors import SmallYiError
from smallyi.inventory.selectors import Selector
from smallyi.notify import templates
from smallyi.notify.service import NotifyService
from smallyi.schedules import cron as cronlib
from smallyi.schedules.clock import Clock, SystemClock
from smallyi.schedules.slots import due
from smallyi.schedules.store import ScheduleStore
from smallyi.storage.db import Database
from smallyi.storage.models import Schedule, ScheduleFire, Task, utcnow
from smallyi.tasks.service import Queued, TaskRequest, TaskService
from smallyi.timestamps import iso, iso_seconds
from smallyi.types import TaskStatus

log = logging.getLogger(__name__)

#: how long the loop sleeps at most (new and changed schedules are seen within this)
MAX_SLEEP = 5.0
#: a fire claimed but never launched (its process died at that instant) stops blocking after this
_STALE_CLAIM = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Launched:
    """A started SOP run and a way to wait for its (status, reason)."""

    run_id: int
    done: Awaitable[tuple[str, str]]


#: starts a schedule's SOP (schedule, fire id, the owner's rights now) → Launched
SopLauncher = Callable[[Schedule, int, Access], Awaitable[Launched]]
#: is a SOP run still unfinished?
RunActive = Callable[[int], Awaitable[bool]]


class Scheduler:
    def __init__(self, *, db: Database, store: ScheduleStore, tasks: TaskService, settings: ScheduleSettings,
                 runner: str, accounts: Accounts, clock: Clock | None = None, audit: AuditTrail | None = None,
                 notify: NotifyService | None = None, notify_settings: NotifySettings | None = None,
                 launch_sop: SopLauncher | None = None, run_active: RunActive | None = None) -> None:
        self.db = db
        self.store = store
        self.tasks = tasks
        self.settings = settings
        self.runner = runner
        self.clock = clock or SystemClock()
        #: owners' rights, read at every fire
        self.accounts = accounts
        self.audit = audit
        self.notify = notify
        self.templates = notify_settings.templates if notify_settings else {}
        self.launch_sop = launch_sop
        self.run_active = run_active
        self._followers: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look again now (a schedule was added or changed in this process)."""
        self._wake.set()

    async def run(self) -> None:
        log.info("scheduler started (%s)", self.runner)
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler: a check failed; trying again shortly")
            self._wake.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep(self._sleep_for()))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, waker):
                    t.cancel()

    def _sleep_for(self) -> float:
        now = self.clock.now()
        nxt = self._next_due
        if nxt is None:
            return MAX_SLEEP
        return max(0.05, min(MAX_SLEEP, (nxt - now).total_seconds() + 0.01))

    _next_due: datetime | None = None

    async def tick(self) -> list[int]:
        """Fire every slot due now; returns the ids of the fires this scheduler claimed and launched."""
        now = self.clock.now()
        schedules = await self.store.all(enabled_only=True)
        last_slots = await self.store.last_slots()
        fired: list[int] = []
        soonest: datetime | None = None
        for sch in schedules:
            try:
                spec, tz = cronlib.parse(sch.cron), cronlib.zone(sch.timezone)
            except SmallYiError as exc:
                log.error("schedule %s cannot run: %s", sch.name, exc.message)
                continue
            last = max(filter(None, [last_slots.get(sch.id), sch.updated_at]))
            d = due(spec, tz, last=last, now=now, grace=self.settings.grace, missed=sch.missed)
            if d.missed and not d.late:
                # one row records the passed-over slots (and moves "last handled" past them)
                await self._claim(sch, d.missed[-1], status="missed",
                                  reason=f"{len(d.missed)} slot(s) passed while no scheduler ran (missed: skip)")
            if d.fire is not None:
                fire = await self._claim(sch, d.fire, status="running",
                                         reason="missed slot run once (missed: run_once)" if d.late else "")
                if fire is not None:
                    fired.append(fire.id)
                    await self._launch(sch, fire)
            nxt = spec.next_after(now, tz)
            soonest = nxt if soonest is None or nxt < soonest else soonest
        self._next_due = soonest
        return fired

    async def _claim(self, sch: Schedule, slot: datetime, *, status: str, reason: str = "") -> ScheduleFire | None:
        """The unique row for (schedule, slot); None if another scheduler has it already."""
        row = ScheduleFire(schedule_id=sch.id, slot=slot, fired_at=self.clock.now(), runner=self.runner,
                           status=status, reason=reason)
        try:
            async with self.db.session.begin() as s:
                s.add(row)
        except IntegrityError:
            return None
        if status == "missed":
            log.warning("schedule %s: %s", sch.name, reason)
        return row

    async def _launch(self, sch: Schedule, fire: ScheduleFire) -> None:
        owner = await self.accounts.standing(sch.created_by)
        changed = await self._note_owner(sch, fire, owner.problem("owner") if owner.access is None else "")
        if owner.access is None:  # channels hear of it once, when it starts
            why = (f"{owner.problem('owner')}: nothing runs until they may act again (then with their rights at "
                   "that time), or someone takes the schedule over")
            await (self._finish if changed else self._record)(sch, fire, "suspended", why)
            return
        if sch.overlap == "skip":
            busy = await self._still_running(sch, fire)
            if busy:
                await self._finish(sch, fire, "skipped", f"the previous run ({busy}) is still going (overlap: skip)")
                return
        try:
            if sch.kind == "command":
                submitted = await self._start_command(sch, owner.access)
                if isinstance(submitted, Held):
                    await self._finish(sch, fire, "error", f"the command policy holds it for approval: {submitted.message}")
                    return
                task_id = submitted.task_id
                await self._set(fire.id, task_id=task_id)
                self._follow(sch, fire, self._wait_task(task_id), task_id=task_id)
            else:
                if self.launch_sop is None:
                    raise SmallYiError("SOP schedules need the SOP runner, which this process does not have")
                launched = await self.launch_sop(sch, fire.id, owner.access)
                await self._set(fire.id, run_id=launched.run_id)
                self._follow(sch, fire, launched.done, run_id=launched.run_id)
        except SmallYiError as exc:
            await self._finish(sch, fire, "error", exc.message)
        except Exception as exc:
            log.exception("schedule %s: launching failed", sch.name)
            await self._finish(sch, fire, "error", f"internal error: {exc!r}")

    async def _start_command(self, sch: Schedule, owner: Access) -> Queued | Held:
        selector = Selector.from_dict(sch.target)
        hosts = await self.tasks.inventory.resolve(selector)
        owner.check_hosts(Perm.TASKS_RUN, [(h.name, h.permission_groups) for h in hosts])
        return await self.tasks.submit(TaskRequest(selector, sch.command, timeout=sch.timeout),
                                       Caller(f"schedule:{sch.name}", role=owner.role, client="scheduler",
                                              kind="schedule", person=sch.created_by))

    async def _note_owner(self, sch: Schedule, fire: ScheduleFire, problem: str) -> bool:
        """Audit a schedule becoming suspended (its owner cannot act) or fit to run again: once per change,
        not at every slot. True when this fire is such a change."""
        async with self.db.session() as s:
            prev = await s.scalar(select(ScheduleFire).where(
                ScheduleFire.schedule_id == sch.id, ScheduleFire.id != fire.id,
                ScheduleFire.status.not_in(("missed",))).order_by(ScheduleFire.slot.desc()).limit(1))
        was = prev is not None and prev.status == "suspended"
        if problem and not was:
            log.warning("schedule %s is suspended: %s", sch.name, problem)
            action, detail = "schedule.suspended", {"owner": sch.created_by, "reason": problem}
        elif was and not problem:
            log.info("schedule %s: its owner %s may act again; it runs with their rights now", sch.name, sch.created_by)
            action, detail = "schedule.reinstated", {"owner": sch.created_by}
        else:
            return False
        if self.audit is not None:
            await self.audit.safe_record(action, actor=f"schedule:{sch.name}", target=f"schedule {sch.name}",
                                         result="denied" if problem else "ok",
                                         detail={**detail, "slot": iso(fire.slot)})
        return True

    async def _wait_task(self, task_id: int) -> tuple[str, str]:
        await self.tasks.wait(task_id)
        while True:  # a task run by this process is final once wait returns; poll briefly otherwise
            async with self.db.session() as s:
                row = await s.get(Task, task_id)
            if row is None or TaskStatus(row.status).final:
                return (row.status, row.reason) if row else ("failed", "the task vanished")
            await asyncio.sleep(0.5)

    def _follow(self, sch: Schedule, fire: ScheduleFire, done: Awaitable[tuple[str, str]], **ids: int) -> None:
        async def follow() -> None:
            try:
                status, reason = await done
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                status, reason = "failed", f"internal error: {exc!r}"
            await self._finish(sch, fire, status, reason, **ids)

        task = asyncio.create_task(follow(), name=f"schedule-{sch.name}-{fire.id}")
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _still_running(self, sch: Schedule, fire: ScheduleFire) -> str | None:
        """What earlier fire of ``sch`` is unfinished, described; None if none is."""
        async with self.db.session() as s:
            rows = (await s.scalars(select(ScheduleFire).where(
                ScheduleFire.schedule_id == sch.id, ScheduleFire.status == "running", ScheduleFire.id != fire.id,
                ScheduleFire.slot < fire.slot).order_by(ScheduleFire.slot.desc()).limit(5))).all()
            for prev in rows:
                if prev.task_id is not None:
                    task = await s.get(Task, prev.task_id)
                    if task is not None and not TaskStatus(task.status).final:
                        return f"task {prev.task_id}"
                elif prev.run_id is not None:
                    if self.run_active is not None and await self.run_active(prev.run_id):
                        return f"SOP run {prev.run_id}"
                elif self.clock.now() - prev.fired_at < _STALE_CLAIM:
                    return f"slot {iso_seconds(prev.slot)}, starting"
        return None

    async def _finish(self, sch: Schedule, fire: ScheduleFire, status: str, reason: str, **ids: int) -> None:
        reason = await self._record(sch, fire, status, reason, **ids)
        await self._notify(sch, fire, status, reason, **ids)

    async def _record(self, sch: Schedule, fire: ScheduleFire, status: str, reason: str, **ids: int) -> str:
        """Write how the fire ended (without telling anyone); returns the reason as recorded."""
        reason = "; ".join(r for r in (fire.reason, reason) if r)  # keep why it fired (a missed slot run once)
        await self._set(fire.id, status=status, reason=reason, finished_at=utcnow(), **ids)
        log.info("schedule %s slot %s: %s%s", sch.name, fire.slot.isoformat(), status, f" ({reason})" if reason else "")
        return reason

    async def _notify(self, sch: Schedule, fire: ScheduleFire, status: str, reason: str, **ids: int) -> None:
        spec = sch.notify or {}
        channels = list(spec.get("channels", []))
        if not channels or self.notify is None:
            return
        event = "success" if status == "success" else "failure"
        on = spec.get("on", ["failure"])
        if event not in on and "finish" not in on:
            return
        data: dict[str, Any] = {"schedule": sch.name, "status": status, "reason": reason,
                                "slot": iso(fire.slot), "kind": sch.kind, **ids}
        msg = templates.message("schedule", data, status=event, override=spec.get("message"),
                                configured=self.templates)
        await self.notify.notify(channels, msg, key=f"schedule:{fire.id}:{event}", subject=f"schedule {sch.name}")

    async def _set(self, fire_id: int, **values: Any) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(ScheduleFire).where(ScheduleFire.id == fire_id).values(**values))

    async def drain(self) -> None:
        """Wait for launched runs to be recorded as finished (tests; shutdown does not wait)."""
        while self._followers:
            await asyncio.gather(*list(self._followers), return_exceptions=True)

    async def close(self) -> None:
        for t in list(self._followers):
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
