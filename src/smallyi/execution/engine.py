"""The engine: fan one command out to many hosts within limits, emitting events.

CONTRACT (implementation in progress):

    job = Job(hosts=[HostSpec...], command="uptime", timeout=10.0, concurrency=50, rate=20.0,
              cancel=asyncio.Event())
    await engine.run(job, emit)   # returns when every host has had exactly one HostDone

- ``emit`` is called synchronously with HostStarted, HostOutput (one per line), HostDone.
- Global cap ``execution.max_concurrency`` on host sessions across all jobs; per-job ``concurrency``;
  ``rate`` new connections per second (0 = unlimited).
- ``timeout`` (seconds, 0 = none) covers the command; connect has ``ssh.connect_timeout``.
- Setting ``job.cancel`` stops remote commands; unfinished hosts end ``cancelled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from smallyi.inventory.hosts import HostSpec


@dataclass
class Job:
    hosts: Sequence[HostSpec]
    command: str
    timeout: float
    concurrency: int
    rate: float = 0.0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
