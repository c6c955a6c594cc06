"""One viewer's stream of a task's output: the archive from a sequence number on, then live, then the end.

The messages are ready to send (``{"type": "events", "events": [...]}``, last ``{"type": "end",
"task": {...}}``): the WebSocket route only sends them. A viewer that reconnects with the last ``seq``
it saw misses nothing and sees nothing twice: the live subscription and the unarchived events are
taken together, and the archive fills whatever the live feed did not carry (the task ran elsewhere,
or the viewer fell behind and was dropped from the feed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from smallyi.auth.rbac import HostScope
from smallyi.execution.wire import Archived
from smallyi.tasks import replay
from smallyi.tasks.queries import Archive, task_dict
from smallyi.tasks.service import TaskService
from smallyi.types import TaskStatus

#: live events sent per message at most
LIVE_BATCH = 500


async def open_stream(tasks: TaskService, archive: Archive, task_id: int, *, after: int,
                      scope: HostScope) -> AsyncGenerator[str, None]:
    """The task's messages from sequence ``after`` on, of the hosts in ``scope`` (live and replayed alike).

    NotFound here, before any message, if ``scope`` reaches none of the task's hosts. Close the
    generator (``aclose``) if its viewer goes away before the end.
    """
    await archive.task(task_id, scope=scope)
    visible = await archive.hosts_of(task_id, scope=scope)
    return _stream(tasks, archive, task_id, after, scope, visible)


async def _stream(tasks: TaskService, archive: Archive, task_id: int, last: int, scope: HostScope,
                  visible: set[str] | None) -> AsyncGenerator[str, None]:
    """``visible``: the task's hosts within ``scope`` (None: all), to filter the live events by."""
    seen = _Seen(last)
    sub, pending = tasks.subscribe(task_id, last)
    try:
        async for frame in seen.replay(archive, task_id, scope):
            yield frame
        fresh = [w for w in pending if w["seq"] > seen.last]
        if fresh:
            seen.last = fresh[-1]["seq"]
            fresh = _only(fresh, visible)
            if fresh:
                yield _events(fresh)
        ended = False
        if sub is not None:
            async for events in sub.batches(LIVE_BATCH):
                batch: list[Archived] = []
                for w in events:
                    if w.get("seq") is None:
                        ended = True
                        break
                    if w["seq"] > seen.last:
                        if visible is None or w.get("host") in visible:
                            batch.append(w)
                        seen.last = w["seq"]
                if batch:
                    yield _events(batch)
                if ended:
                    break
        if ended:
            # the task's final event: its run is closing here (last archive write, audit record); wait for
            # that instead of polling below, which slept 0.3 s whenever it looked during those writes
            await tasks.wait(task_id)
        # the task finished, ran elsewhere, or we fell behind: finish from the archive
        while True:
            async for frame in seen.replay(archive, task_id, scope):
                yield frame
            task = await archive.task(task_id, scope=scope)
            if TaskStatus(task.status).final and tasks.live(task_id) is None:
                async for frame in seen.replay(archive, task_id, scope):
                    yield frame
                break
            await asyncio.sleep(0.3)
        yield json.dumps({"type": "end", "task": task_dict(task)}, default=str)
    finally:
        if sub is not None:
            sub.close()


@dataclass
class _Seen:
    """The last ``seq`` the viewer has been given (or skipped as another's host)."""

    last: int

    async def replay(self, archive: Archive, task_id: int, scope: HostScope) -> AsyncIterator[str]:
        """The archived events after ``last`` in ``scope`` (frames of about a MiB)."""
        async for frame, seq in replay.archived_frames(archive.db, task_id, self.last, scope=scope):
            yield frame
            self.last = seq


def _events(events: list[Archived]) -> str:
    return json.dumps({"type": "events", "events": events})


def _only(events: list[Archived], visible: set[str] | None) -> list[Archived]:
    return events if visible is None else [w for w in events if w.get("host") in visible]
