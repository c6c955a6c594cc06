"""One follow of log files across a target, as ``small-yi logs`` prints it and the server streams it.

The hosts of the selector tail the files through :meth:`Engine.follow`; each event becomes the same
small dict as task output, with the time it happened and no sequence number: a follow is not archived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from smallyi.execution.engine import Engine, Job
from smallyi.execution.events import Event, HostDone, HostOutput, HostStarted
from smallyi.execution.follow import check_files, compile_grep
from smallyi.inventory.selectors import Selector
from smallyi.inventory.service import InventoryService
from smallyi.timestamps import Stamper

log = logging.getLogger(__name__)


def wire(ev: Event, stamp: Stamper | None = None) -> dict[str, Any]:
    """The same small dicts as task output, with the time each happened (``at``), without sequence
    numbers: a follow is not archived."""
    stamp = stamp or Stamper()
    if isinstance(ev, HostOutput):
        return {"host": ev.host, "stream": ev.stream, "text": ev.text, "at": stamp(time.time())}
    if isinstance(ev, HostStarted):
        return {"host": ev.host, "stream": "start", "text": "", "at": stamp(ev.at)}
    assert isinstance(ev, HostDone)
    return {"host": ev.host, "stream": "done", "status": ev.status.value, "reason": ev.reason,
            "at": stamp(ev.finished)}


async def follow(
    engine: Engine,
    inventory: InventoryService,
    selector: Selector,
    *,
    files: Sequence[str],
    lines: int,
    grep: str | None,
    on_event: Callable[[dict[str, Any]], None],
    cancel: asyncio.Event,
    user: str,
) -> int:
    """Follow ``files`` on every host of ``selector`` until ``cancel``; returns how many hosts."""
    check_files(files)
    compile_grep(grep)
    hosts = await inventory.resolve(selector)
    log.info("%s follows %s on %d hosts (%s)", user, ",".join(files), len(hosts), selector.describe())
    job = Job(hosts=hosts, command="", timeout=0, concurrency=len(hosts), cancel=cancel)
    stamp = Stamper()
    await engine.follow(job, lambda ev: on_event(wire(ev, stamp)), files=files, lines=lines, grep=grep)
    return len(hosts)
