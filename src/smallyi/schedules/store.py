"""Schedules and their fires in the database, checked on the way in (every bad field named)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from smallyi.durations import check_timeout
from smallyi.errors import Conflict, InputError, NotFound
from smallyi.policy import command_text
from smallyi.schedules import cron as cronlib
from smallyi.schedules.slots import MISSED_POLICIES, OVERLAP_POLICIES
from smallyi.storage.db import Database
from smallyi.storage.models import Schedule, ScheduleFire, utcnow
from smallyi.storage.rows import affected
from smallyi.timestamps import iso

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KINDS = ("command", "sop")
NOTIFY_ON = ("success", "failure", "finish")
FIELDS = ("description", "cron", "timezone", "kind", "command", "target", "timeout", "sop_name", "vars",
          "environment", "missed", "overlap", "enabled", "notify")


def check(values: Mapping[str, Any], *, changed: Collection[str] | None = None) -> dict[str, Any]:
    """A schedule's fields, checked together (InputError naming the first bad one); returns them tidied.

    With ``changed`` (an edit), the command's text and the timeout are checked only if the edit sets them:
    a schedule stored before those rules (a timeout of 0) can still be paused, and says so when it fires.
    """
    v = dict(values)
    new = set(v) if changed is None else set(changed)
    name = v.get("name", "")
    if "name" in v and (not isinstance(name, str) or not NAME_RE.match(name)):
        raise InputError(f"name: {name!r}: use letters, digits, '.', '_' and '-'", field="name")
    spec = cronlib.parse(v.get("cron", ""))
    tz = cronlib.zone(v.get("timezone") or "UTC")
    spec.next_after(utcnow(), tz)  # an expression that never fires is refused now, not discovered later
    kind = v.get("kind")
    if kind not in KINDS:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    if kind == "command":
        if not str(v.get("command") or "").strip():
            raise InputError("command: a command schedule needs the command to run", field="command")
        if "command" in new:
            command_text.check(str(v["command"]), field="command")
        if not v.get("target"):
            raise InputError("target: a command schedule needs a target (group, hosts or labels)", field="target")
    elif not str(v.get("sop_name") or "").strip():
        raise InputError("sop_name: a sop schedule needs the name of a stored SOP", field="sop_name")
    if v.get("missed", "skip") not in MISSED_POLICIES:
        raise InputError(f"missed: {v.get('missed')!r} is not one of {', '.join(MISSED_POLICIES)}", field="missed")
    if v.get("overlap", "skip") not in OVERLAP_POLICIES:
        raise InputError(f"overlap: {v.get('overlap')!r} is not one of {', '.join(OVERLAP_POLICIES)}",
                         field="overlap")
    notify = v.get("notify") or {}
    if not isinstance(notify, Mapping):
        raise InputError("notify: expected {channels: [...], on: [failure]}", field="notify")
    unknown = set(notify) - {"channels", "on", "message"}
    if unknown:
        raise InputError(f"notify: unknown field(s) {', '.join(sorted(unknown))}", field="notify")
    for event in notify.get("on", ["failure"]):
        if event not in NOTIFY_ON:
            raise InputError(f"notify.on: {event!r} is not one of {', '.join(NOTIFY_ON)}", field="notify.on")
    timeout = v.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise InputError("timeout: expected seconds (a number more than 0)", field="timeout")
    if timeout is not None and "timeout" in new:
        check_timeout(timeout, field="timeout")
    v["cron"], v["timezone"] = spec.text, tz.key
    return v


def schedule_dict(s: Schedule, *, next_slot: datetime | None = None, suspended: str | None = None) -> dict[str, Any]:
    """The API's form; ``suspended`` is why its owner cannot act now (its slots then run nothing)."""
    return {"id": s.id, "name": s.name, "description": s.description, "cron": s.cron, "timezone": s.timezone,
            "kind": s.kind, "command": s.command or None, "target": s.target or None, "timeout": s.timeout,
            "sop_name": s.sop_name or None, "vars": s.vars, "environment": s.environment or None,
            "missed": s.missed, "overlap": s.overlap, "enabled": s.enabled, "notify": s.notify,
            "created_by": s.created_by, "owner": s.created_by, "suspended": suspended,
            "created_at": iso(s.created_at), "updated_at": iso(s.updated_at), "next_slot": iso(next_slot)}


def fire_dict(f: ScheduleFire) -> dict[str, Any]:
    return {"id": f.id, "schedule_id": f.schedule_id, "slot": iso(f.slot), "fired_at": iso(f.fired_at),
            "finished_at": iso(f.finished_at), "status": f.status, "reason": f.reason or None, "task_id": f.task_id,
            "run_id": f.run_id, "runner": f.runner}


def next_slot(s: Schedule, after: datetime | None = None) -> datetime | None:
    if not s.enabled:
        return None
    return cronlib.parse(s.cron).next_after(after or utcnow(), cronlib.zone(s.timezone))


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, values: Mapping[str, Any], *, by: str, role: str = "admin",
                     groups: Sequence[str] = ()) -> Schedule:
        if not values.get("name"):
            raise InputError("name: a schedule needs a name", field="name")
        v = check(values)
        now = utcnow()
        row = Schedule(name=v["name"], created_by=by, role=role, groups=list(groups), created_at=now, updated_at=now,
                       **{k: v[k] for k in FIELDS if k in v and v[k] is not None})
        async with self.db.session.begin() as s:
            if await s.scalar(select(Schedule.id).where(Schedule.name == row.name)) is not None:
                raise Conflict(f"schedule {row.name!r} already exists", field="name")
            s.add(row)
        return row

    async def update(self, name: str, changes: Mapping[str, Any], *, by: str,
                     owner: tuple[str, str, Sequence[str]] | None = None) -> Schedule:
        """Change fields; ``owner`` (user, role, groups) hands the schedule over to that user."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise InputError(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        async with self.db.session.begin() as s:
            row = await s.scalar(select(Schedule).where(Schedule.name == name))
            if row is None:
                raise NotFound(f"schedule {name!r} not found", field="name")
            merged = {**{k: getattr(row, k) for k in FIELDS}, **changes}
            v = check(merged, changed=changes)
            for k in FIELDS:
                setattr(row, k, v[k])
            if owner is not None:
                row.created_by, row.role, row.groups = owner[0], owner[1], list(owner[2])
            row.updated_at = utcnow()  # an edit restarts the missed-run count from now
        return row

    async def get(self, name: str) -> Schedule:
        async with self.db.session() as s:
            row = await s.scalar(select(Schedule).where(Schedule.name == name))
        if row is None:
            raise NotFound(f"schedule {name!r} not found", field="name")
        return row

    async def all(self, *, enabled_only: bool = False) -> list[Schedule]:
        q = select(Schedule).order_by(Schedule.name)
        if enabled_only:
            q = q.where(Schedule.enabled.is_(True))
        async with self.db.session() as s:
            return list((await s.scalars(q)).all())

    async def delete(self, name: str) -> None:
        async with self.db.session.begin() as s:
            res = await s.execute(delete(Schedule).where(Schedule.name == name))
        if not affected(res):
            raise NotFound(f"schedule {name!r} not found", field="name")

    async def fires(self, schedule_id: int, *, limit: int = 50, offset: int = 0) -> tuple[list[ScheduleFire], int]:
        base = select(ScheduleFire).where(ScheduleFire.schedule_id == schedule_id)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(base.subquery()))
            rows = (await s.scalars(base.order_by(ScheduleFire.slot.desc()).limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    async def last_slots(self) -> dict[int, datetime]:
        """The latest slot handled per schedule."""
        async with self.db.session() as s:
            rows = (await s.execute(select(ScheduleFire.schedule_id, func.max(ScheduleFire.slot))
                                    .group_by(ScheduleFire.schedule_id))).all()
        return {sid: slot for sid, slot in rows if slot is not None}
