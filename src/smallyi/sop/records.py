"""A run's record in the database: the run row, one row per step, numbered events.

An approval step's request lives with the other approvals (``smallyi.approvals.steps``).

Every change is written at once (runs are a handful of rows, not output lines), and each event is
published on the bus topic ``sop-run:<id>`` after it is stored, so followers can replay from the
database and continue live without a gap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import func, insert, select, update

from smallyi.bus.base import Bus
from smallyi.errors import NotFound
from smallyi.sop.statuses import SopRunStatus, SopStepStatus
from smallyi.storage.db import Database
from smallyi.storage.models import SopRun, SopRunEvent, SopRunStep, utcnow
from smallyi.storage.rows import affected
from smallyi.timestamps import iso


class RunDict(TypedDict):
    """A run as the API answers it (``SopRunOut``) and the CLI prints it."""

    id: int
    sop: str | None
    sop_version: int | None
    status: SopRunStatus
    reason: str | None
    trigger: str
    started_by: str
    environment: str | None
    #: the run's default target as given (``group``, ``hosts``, ``labels``)
    target: dict[str, Any] | None
    #: the run's variables: whatever the SOP declares
    vars: dict[str, Any]
    dry_run: bool
    parent_run_id: int | None
    parent_step: str | None
    schedule_id: int | None
    runner: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration: float | None
    #: steps by status
    counts: dict[str, int]
    last_seq: int


class StepDict(TypedDict):
    """A step of a run as the API answers it (``RunStepOut``)."""

    id: str
    type: str
    status: SopStepStatus
    reason: str | None
    wave: int
    attempts: int
    task_ids: list[int]
    #: what later steps read as ``.steps.<id>``: its fields depend on the step's type
    result: dict[str, Any]
    started_at: str | None
    finished_at: str | None
    duration: float | None


class EventDict(TypedDict):
    """One numbered event of a run, as stored, published and streamed (``RunEventOut``)."""

    seq: int
    at: str
    kind: str
    step: str | None
    #: the event's details: each kind has its own (``step.finish``: status, reason, duration ...)
    data: dict[str, Any]


def topic(run_id: int) -> str:
    return f"sop-run:{run_id}"


def jsonable(value: Any) -> Any:
    """``value`` as it will read back from a JSON column (datetimes become ISO text)."""
    return json.loads(json.dumps(value, default=_default))


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return iso(o)
    return str(o)


def run_dict(r: SopRun) -> RunDict:
    return {
        "id": r.id, "sop": r.sop_name or None, "sop_version": r.sop_version or None,
        "status": SopRunStatus(r.status),
        "reason": r.reason or None, "trigger": r.trigger, "started_by": r.started_by,
        "environment": r.environment or None, "target": r.target or None, "vars": r.vars, "dry_run": r.dry_run,
        "parent_run_id": r.parent_run_id, "parent_step": r.parent_step or None, "schedule_id": r.schedule_id,
        "runner": r.runner, "created_at": iso(r.created_at), "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "duration": (r.finished_at - r.started_at).total_seconds() if r.finished_at and r.started_at else None,
        "counts": r.counts, "last_seq": r.last_seq,
    }


def step_dict(s: SopRunStep) -> StepDict:
    return {"id": s.step_id, "type": s.type, "status": SopStepStatus(s.status), "reason": s.reason or None,
            "wave": s.wave,
            "attempts": s.attempts, "task_ids": list(s.task_ids), "result": s.result, "started_at": iso(s.started_at),
            "finished_at": iso(s.finished_at), "duration": s.duration}


class RunRecords:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    # -- runs and steps -----------------------------------------------------------------------

    async def create(self, run: SopRun, steps: Sequence[tuple[str, str, int]]) -> int:
        """Write the run and its steps (id, type, wave) as pending, in one transaction."""
        async with self.db.session.begin() as s:
            s.add(run)
            await s.flush()
            if steps:
                await s.execute(insert(SopRunStep), [
                    {"run_id": run.id, "step_id": sid, "type": stype, "status": SopStepStatus.PENDING, "position": i,
                     "wave": wave, "task_ids": [], "result": {}}
                    for i, (sid, stype, wave) in enumerate(steps)])
            return run.id

    async def run(self, run_id: int) -> SopRun:
        async with self.db.session() as s:
            row = await s.get(SopRun, run_id)
        if row is None:
            raise NotFound(f"SOP run {run_id} not found")
        return row

    async def runs(self, *, status: str | None = None, sop: str | None = None, started_by: str | None = None,
                   limit: int = 50, offset: int = 0) -> tuple[list[SopRun], int]:
        q = select(SopRun)
        if status:
            q = q.where(SopRun.status == status)
        if sop:
            q = q.where(SopRun.sop_name == sop)
        if started_by:
            q = q.where(SopRun.started_by == started_by)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(q.subquery()))
            rows = (await s.scalars(q.order_by(SopRun.id.desc()).limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    async def steps(self, run_id: int) -> list[SopRunStep]:
        async with self.db.session() as s:
            return list((await s.scalars(select(SopRunStep).where(SopRunStep.run_id == run_id)
                                         .order_by(SopRunStep.position))).all())

    async def set_run(self, run_id: int, **values: Any) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(SopRun).where(SopRun.id == run_id).values(**values))

    async def set_step(self, run_id: int, step_id: str, **values: Any) -> None:
        if "result" in values:
            values["result"] = jsonable(values["result"])
        async with self.db.session.begin() as s:
            await s.execute(update(SopRunStep).where(SopRunStep.run_id == run_id, SopRunStep.step_id == step_id)
                            .values(**values))

    async def claim(self, run_id: int, *, runner: str, expect_runner: str) -> bool:
        """Take over a run from a process that stopped (only one claimant wins)."""
        async with self.db.session.begin() as s:
            res = await s.execute(update(SopRun).where(SopRun.id == run_id, SopRun.runner == expect_runner,
                                                       SopRun.status == SopRunStatus.RUNNING)
                                  .values(runner=runner, heartbeat_at=utcnow()))
        return bool(affected(res))

    async def orphans(self, *, lease: float, alive: Any) -> list[SopRun]:
        """Running runs whose process is gone: not alive by pid, or silent for longer than ``lease``."""
        stale = utcnow() - timedelta(seconds=lease)
        async with self.db.session() as s:
            rows = (await s.scalars(select(SopRun).where(SopRun.status == SopRunStatus.RUNNING))).all()
        return [r for r in rows if not alive(r.runner) or (r.heartbeat_at is not None and r.heartbeat_at < stale)]

    # -- events -------------------------------------------------------------------------------

    async def last_seq(self, run_id: int) -> int:
        async with self.db.session() as s:
            return int(await s.scalar(select(func.max(SopRunEvent.seq)).where(SopRunEvent.run_id == run_id)) or 0)

    async def event(self, run_id: int, seq: int, kind: str, step: str = "", data: Mapping[str, Any] | None = None,
                    ) -> EventDict:
        """Store event ``seq`` and publish it; returns its wire form."""
        at = utcnow()
        payload = jsonable(dict(data or {}))
        async with self.db.session.begin() as s:
            s.add(SopRunEvent(run_id=run_id, seq=seq, at=at, kind=kind, step_id=step, data=payload))
            await s.execute(update(SopRun).where(SopRun.id == run_id).values(last_seq=seq))
        wire: EventDict = {"seq": seq, "at": iso(at), "kind": kind, "step": step or None, "data": payload}
        self.bus.publish(topic(run_id), wire)
        return wire

    async def events(self, run_id: int, *, after: int = 0, limit: int = 1000) -> list[EventDict]:
        async with self.db.session() as s:
            rows = (await s.scalars(select(SopRunEvent).where(SopRunEvent.run_id == run_id, SopRunEvent.seq > after)
                                    .order_by(SopRunEvent.seq).limit(limit))).all()
        return [{"seq": e.seq, "at": iso(e.at), "kind": e.kind, "step": e.step_id or None, "data": e.data}
                for e in rows]
