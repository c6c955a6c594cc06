"""Telling channels when ad-hoc tasks finish (or fail): a task's own ``notify``, and the ``notify.tasks`` rule.

A task may carry its own ``{"channels": [...], "on": [...]}`` (``small-yi run --notify``, the
``notify`` field of ``POST /api/v1/tasks``), checked when it is submitted (unknown channels are
refused before anything runs). The server's watcher reads finished tasks from the database every
few seconds, so it sees tasks run by the CLI and by other replicas too, and sends what each task
asks for plus what the ``notify.tasks`` rule asks for; the delivery key (``task:<id>:<event>``,
unique per channel) makes each message go out once per channel, whoever sends it (an in-process
``small-yi run`` sends its own). Tasks that schedules and SOP runs start are left to those.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from smallyi.config import NotifySettings
from smallyi.errors import InputError
from smallyi.notify import templates
from smallyi.notify.channels import ChannelStore
from smallyi.notify.when import task_notify

__all__ = ["TaskWatcher", "check_channels", "notify_task", "task_notify", "wanted"]
from smallyi.notify.service import NotifyService
from smallyi.storage.db import Database
from smallyi.storage.models import Task, utcnow

log = logging.getLogger(__name__)

#: tasks started by these are not ad-hoc: their SOP run or schedule notifies
_AUTOMATED = ("schedule:", "sop:")


async def check_channels(store: ChannelStore, names: Iterable[str]) -> None:
    """InputError naming every unknown channel and the known ones; nothing has run yet when it is raised."""
    known = await store.names()
    unknown = [n for n in names if n not in known]
    if unknown:
        shown = ", ".join(sorted(known)) or "none: add them under notify.channels or POST /api/v1/notifications/channels"
        raise InputError(f"notify: no channel named {', '.join(map(repr, unknown))} (known: {shown})",
                         field="notify.channels")


async def notify_task(service: NotifyService, t: Task, spec: Mapping[str, Any], *,
                      configured: Mapping[str, str]) -> int:
    """Queue the message ``spec`` (channels, on) asks for about finished task ``t``; how many were queued."""
    event = wanted(t.status, tuple(spec.get("on") or ("failure",)))
    if event is None or not spec.get("channels"):
        return 0
    msg = templates.message("task", task_data(t), status=event, configured=configured)
    return len(await service.notify(spec["channels"], msg, key=f"task:{t.id}:{event}", subject=f"task {t.id}"))


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
        """Whether the ``notify.tasks`` rule sends anything (tasks' own notifications are sent regardless)."""
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
            if t.notify:
                sent += await notify_task(self.service, t, t.notify, configured=self.templates)
            if t.created_by.startswith(_AUTOMATED) or (self.rule.created_by and t.created_by not in self.rule.created_by):
                continue
            sent += await notify_task(self.service, t, {"channels": self.rule.channels, "on": self.rule.on},
                                      configured=self.templates)
        return sent
