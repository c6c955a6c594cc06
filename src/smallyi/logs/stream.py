"""The server's log follows: the caller checked and audited, events handed out in batches.

:func:`start_follow` starts a :func:`~smallyi.logs.follow.follow` for an API caller; its
:class:`LogFollow` hands the route batches of events, dropping (and saying so) what a slow client
cannot take, so that a chatty log never grows the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from smallyi.audit.trail import AuditTrail
from smallyi.auth.caller import Caller
from smallyi.auth.gate import allow_hosts
from smallyi.auth.rbac import Perm
from smallyi.errors import SmallYiError
from smallyi.execution import wire
from smallyi.execution.engine import Engine
from smallyi.execution.wire import Wire
from smallyi.inventory.selectors import Selector
from smallyi.inventory.service import InventoryService
from smallyi.logs.follow import follow

#: events a client may be behind before lines are dropped; events sent per message at most
QUEUED, BATCH = 10_000, 500


class LogFollow:
    """A running follow for one client: iterate :meth:`batches`, then :meth:`close`."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Wire] = asyncio.Queue(maxsize=QUEUED)
        self.dropped = 0
        self.cancel = asyncio.Event()
        self.runner: asyncio.Task[int] | None = None

    def offer(self, w: Wire) -> None:
        try:
            self.queue.put_nowait(w)
        except asyncio.QueueFull:
            self.dropped += 1

    def stop(self) -> None:
        """The client went away: end :meth:`batches` and the follow."""
        self.cancel.set()

    async def batches(self) -> AsyncIterator[list[Wire]]:
        """What arrived since the last batch (at most :data:`BATCH` events, then a note of lines dropped),
        until the follow ends or :meth:`stop`."""
        assert self.runner is not None
        stopped = asyncio.create_task(self.cancel.wait())
        try:
            while not self.runner.done() and not self.cancel.is_set():
                getter = asyncio.create_task(self.queue.get())
                done, _ = await asyncio.wait({getter, self.runner, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    continue
                batch = [getter.result()]
                while not self.queue.empty() and len(batch) < BATCH:
                    batch.append(self.queue.get_nowait())
                if self.dropped:
                    batch.append(wire.note(f"[small-yi] {self.dropped} lines dropped: client too slow"))
                    self.dropped = 0
                yield batch
        finally:
            stopped.cancel()

    def problem(self) -> str | None:
        """Why the follow ended by itself (bad files or grep, an internal error), if it failed."""
        if self.runner is None or not self.runner.done() or self.runner.cancelled() or self.cancel.is_set():
            return None
        failure = self.runner.exception()
        if failure is None:
            return None
        return failure.message if isinstance(failure, SmallYiError) else "internal error; see the server log"

    async def close(self) -> None:
        self.cancel.set()
        if self.runner is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.runner, 10)


async def start_follow(
    engine: Engine, inventory: InventoryService, audit: AuditTrail, caller: Caller, selector: Selector, *,
    files: Sequence[str], lines: int, grep: str | None,
) -> LogFollow:
    """Start following for an API ``caller``, who must hold logs.follow on every host (Forbidden, the
    refusal audited); the follow is audited. Bad files or grep end the follow (:meth:`LogFollow.problem`)."""
    hosts = await inventory.resolve(selector)
    await allow_hosts(audit, caller, Perm.LOGS_FOLLOW, hosts, what="logs")
    await audit.record("logs.follow", actor=caller.user, client=caller.client, target=selector.describe(),
                       perm=Perm.LOGS_FOLLOW.value, source="api", detail={"files": list(files), "hosts": len(hosts)})
    f = LogFollow()
    f.runner = asyncio.create_task(follow(engine, inventory, selector, files=files, lines=lines, grep=grep,
                                          on_event=f.offer, cancel=f.cancel, user=caller.user))
    return f
