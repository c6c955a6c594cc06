"""One follow of log files across a target, as ``small-yi logs`` prints it and the server streams it.

The hosts of the selector tail the files through :meth:`Engine.follow`; each event becomes the same
small dict as task output, with the time it happened and no sequence number: a follow is not archived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from smallyi.execution import wire
from smallyi.execution.engine import Engine, Job
from smallyi.execution.events import Event, HostDone, HostOutput, HostStarted
from smallyi.execution.follow import check_files, compile_grep
from smallyi.execution.wire import Wire
from smallyi.inventory.selectors import Selector
from smallyi.inventory.service import InventoryService
from smallyi.timestamps import Stamper

log = logging.getLogger(__name__)


def event(ev: Event, stamp: Stamper | None = None) -> Wire:
    """The same wire events as task output (``execution.wire``), with the time each happened (``at``),
    without sequence numbers: a follow is not archived."""
    stamp = stamp or Stamper()
    if isinstance(ev, HostOutput):
        return wire.line(ev.host, ev.stream, ev.text, stamp(time.time()))
    if isinstance(ev, HostStarted):
        return wire.start(ev.host, stamp(ev.at))
    assert isinstance(ev, HostDone)
    return wire.follow_done(ev.host, stamp(ev.finished), status=ev.status.value, reason=ev.reason)


async def follow(
    engine: Engine,
    inventory: InventoryService,
    selector: Selector,
    *,
    files: Sequence[str],
    lines: int,
    grep: str | None,
    on_event: Callable[[Wire], None],
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
    await engine.follow(job, lambda ev: on_event(event(ev, stamp)), files=files, lines=lines, grep=grep)
    return len(hosts)
