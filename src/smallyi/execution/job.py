"""A job (hosts, command, limits, cancel) and how its tasks run until done or cancelled.

Shared by the engine's ``run`` and by log follow, so that neither imports the other for it: both
start their tasks, then hand them to :func:`run_until_cancel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smallyi.inventory.hosts import HostSpec

log = logging.getLogger(__name__)


@dataclass
class Job:
    hosts: Sequence[HostSpec]
    command: str
    timeout: float
    concurrency: int
    rate: float = 0.0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)


async def run_until_cancel(cancel: asyncio.Event, tasks: Sequence[asyncio.Task[None]], what: str) -> None:
    """Wait for every task; setting ``cancel`` cancels them all. A task's exception is a bug of ours:
    it is logged (``what`` names the task) and not raised, so the caller still ends every host."""
    watcher = asyncio.get_running_loop().create_task(cancel.wait())

    def stop(w: asyncio.Task[Any]) -> None:
        if not w.cancelled():
            for t in tasks:
                t.cancel()

    watcher.add_done_callback(stop)
    try:
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("%s failed", what, exc_info=result)
    finally:
        watcher.cancel()
