"""The ``notify.tasks`` rule: tell channels when ad-hoc tasks finish (or fail), from the archive.

It reads finished tasks from the database every few seconds, so it sees tasks run by the CLI and
by other replicas too; the delivery key (``task:<id>:<event>``) makes each message go out once.
Tasks that schedules and SOP runs start are left to those (they notify on their own terms).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from smallyi.config import NotifySettings
from smallyi.notify import templates
from smallyi.notify.service import NotifyService
from smallyi.storage.db import Database
from smallyi.storage.models import Task, utcnow

log = logging.getLogger(__name__)

#: tasks started by these are not ad-hoc: their SOP run or schedule notifies
_AUTOMATED = ("schedule:", "sop:")


def wanted(task_status: str, on: tuple[str, ...]) -> str | None:
    """The event to send for a finished task, or None: ``success`` / ``failure`` per the rule."""
    event = "success" if task_status == "success" else "failure"
    return event if event in on or "finish" in on else None


def task_data(t: Task) -> dict[str, Any]:
    duration = (t.finished_at - t.started_at).total_seconds() if t.finished_at and t.started_at else None
    return {"task_id": t.id, "command": t.command, "status": t.status, "counts": dict(t.counts),
            "created_by": t.created_by, "host_count": t.host_count, "target": dict(t.target), "reason": t.reason,
            "duration": duration}


class TaskWatcher:
    def __init__(self, db: Database, settings: NotifySettings, service: NotifyService, *,
                 interval: float = 2.0) -> None:
        self.db = db
        self.rule = settings.tasks
        self.templates = settings.templates
        self.service = service
        self.interval = interval
        self.since: datetime = utcnow()

    @property
    def active(self) -> bool:
        return bool(self.rule.channels)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:
                log.exception("notify: checking finished tasks failed; trying again in %gs", self.interval)

    async def check(self) -> int:
        """Notify for tasks finished since the last check; returns how many messages were queued."""
        q = select(Task).where(Task.finished_at > self.since, Task.kind == "command").order_by(Task.finished_at)
        async with self.db.session() as s:
            rows = (await s.scalars(q)).all()
        sent = 0
        for t in rows:
            assert t.finished_at is not None
            self.since = max(self.since, t.finished_at)
            if t.created_by.startswith(_AUTOMATED) or (self.rule.created_by and t.created_by not in self.rule.created_by):
                continue
            event = wanted(t.status, self.rule.on)
            if event is None:
                continue
            msg = templates.message("task", task_data(t), status=event, configured=self.templates)
            sent += len(await self.service.notify(self.rule.channels, msg, key=f"task:{t.id}:{event}",
                                                  subject=f"task {t.id}"))
        return sent
