"""The engine: fan one command out to many hosts within limits, emitting events.

CONTRACT (the task service codes against it):

    engine = Engine(settings.ssh, settings.execution, settings.output)   # connectors={...} to inject
    job = Job(hosts=[HostSpec...], command="uptime", timeout=10.0, concurrency=50, rate=20.0,
              cancel=asyncio.Event())
    await engine.run(job, emit)   # returns when every host has had exactly one HostDone
    engine.free_slots             # global session slots free now
    engine.stats()                # sessions, pool size, ...
    await engine.follow(job, emit, files=[...], lines=10, grep=None)   # `small-yi logs`; see follow.py
    await engine.put_files({host: [FilePut(...)]})   # per-host HostFiles; get_files reads; transfer.py
    await engine.close()          # close pooled connections

- ``emit`` is called synchronously: per host exactly one HostStarted, then HostOutput (one per line),
  then exactly one HostDone, whatever happens (a host's exception becomes its HostDone's reason).
- Global cap ``execution.max_concurrency`` on host sessions across all jobs; per-job ``concurrency``
  (that many workers; 0 = ``execution.default_concurrency``); ``rate`` new connections per second
  (0 = unlimited; reusing a pooled connection costs nothing).
- ``ssh.connect_timeout`` (or the host's own ``ssh.connect_timeout``) covers reaching the host; ``timeout`` (seconds, 0 = none) covers the command.
- Setting ``job.cancel`` stops remote commands; unfinished hosts, started or not, end ``cancelled``.
  Cancelling the ``run`` task itself does the same, then re-raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from smallyi.config import ExecutionSettings, OutputSettings, SSHSettings
from smallyi.errors import ExecutionError, HostUnreachable
from smallyi.execution.connectors.base import Connector, RunContext
from smallyi.execution.connectors.local import LocalConnector
from smallyi.execution.connectors.ssh import SSHConnector
from smallyi.execution.events import Emit, HostDone, HostStarted
from smallyi.execution.files import FilePut, HostFiles
from smallyi.execution.follow import Follower
from smallyi.execution.job import Job as Job  # part of the engine's contract (above)
from smallyi.execution.job import run_until_cancel
from smallyi.execution.limits import RateLimiter, Slots
from smallyi.execution.outcome import outcome, safe_emit
from smallyi.execution.output import LineSplitter
from smallyi.execution.transfer import TransferOptions, Transfers
from smallyi.inventory.hosts import HostSpec
from smallyi.types import HostStatus

log = logging.getLogger(__name__)


def _where(host: HostSpec) -> str:
    return f"[{host.address}]:{host.port}" if ":" in host.address else f"{host.address}:{host.port}"


class Engine:
    """See the module docstring."""

    def __init__(
        self,
        ssh: SSHSettings,
        execution: ExecutionSettings,
        output: OutputSettings,
        *,
        connectors: Mapping[str, Connector] | None = None,
    ) -> None:
        self.ssh = ssh
        self.execution = execution
        self.output = output
        self.connectors: dict[str, Connector] = {"ssh": SSHConnector(ssh), "local": LocalConnector()}
        self.connectors.update(connectors or {})
        self._slots = Slots(execution.max_concurrency)
        #: connectors a reload replaced whose connections still carry sessions (closed with the engine)
        self._retired: list[Connector] = []
        self._jobs = 0
        self.follows = 0

    @property
    def free_slots(self) -> int:
        """Global session slots free now: how many more hosts could start at once."""
        return self._slots.free

    def stats(self) -> dict[str, Any]:
        per_connector = {name: c.stats() for name, c in self.connectors.items()}
        return {
            "max_concurrency": self._slots.capacity,
            "active_sessions": self._slots.in_use,
            "free_slots": self._slots.free,
            "waiting_sessions": self._slots.waiting,
            "peak_sessions": self._slots.peak,
            "jobs": self._jobs,
            "follows": self.follows,
            "pool_connections": sum(s.get("connections", 0) for s in per_connector.values()),
            "connectors": per_connector,
        }

    def reconfigure(self, ssh: SSHSettings, execution: ExecutionSettings, output: OutputSettings, *,
                    connectors: Mapping[str, Connector] | None = None) -> None:
        """Settings from a reloaded config, for the hosts that start from now on: limits, output, and
        ``connectors`` in place of those of the same name (each replaced one is retired: its pooled
        connections, made with the old settings, serve only the sessions under way and then close)."""
        self.ssh, self.execution, self.output = ssh, execution, output
        self._slots.resize(execution.max_concurrency)
        self._retired = [c for c in self._retired if c.stats().get("connections", 0)]  # those still in use
        for name, connector in (connectors or {}).items():
            old = self.connectors.get(name)
            self.connectors[name] = connector
            if old is not None and old is not connector:
                old.retire()
                self._retired.append(old)

    async def close(self) -> None:
        """Close pooled connections (running jobs should be finished or cancelled first)."""
        for connector in [*self.connectors.values(), *self._retired]:
            await connector.close()

    async def run(self, job: Job, emit: Emit) -> None:
        """Run ``job.command`` on every host of ``job``; see the module docstring."""
        n = len(job.hosts)
        if n == 0:
            return
        pending = iter(job.hosts)
        workers = min(job.concurrency if job.concurrency > 0 else self.execution.default_concurrency, n)
        rate = RateLimiter(job.rate) if job.rate > 0 else None
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._worker(pending, job, emit, rate)) for _ in range(workers)]
        self._jobs += 1
        try:
            await run_until_cancel(job.cancel, tasks, "engine worker")
        finally:
            self._jobs -= 1
            for host in pending:  # left by a cancel (or a failed worker): each still gets its HostDone
                self._never_started(host, emit)

    async def follow(
        self, job: Job, emit: Emit, *, files: Sequence[str], lines: int = 10, grep: str | None = None
    ) -> None:
        """Follow log files on ``job.hosts`` until ``job.cancel``; see :mod:`smallyi.execution.follow`."""
        follower = Follower(self, files=files, lines=lines, grep=grep)
        self.follows += 1
        try:
            await follower.run(job, emit)
        finally:
            self.follows -= 1

    async def put_files(
        self, batch: Mapping[HostSpec, Sequence[FilePut]], opts: TransferOptions | None = None
    ) -> dict[str, HostFiles]:
        """Write files on many hosts, each atomically, within the same limits as ``run``; see transfer.py."""
        return await Transfers(self.connectors, self._slots, self.ssh, self.execution).put(
            batch, opts or TransferOptions())

    async def get_files(
        self, batch: Mapping[HostSpec, Sequence[str]], opts: TransferOptions | None = None
    ) -> dict[str, HostFiles]:
        """Read files from many hosts (absent ones answer ``missing``), within the same limits as ``run``."""
        return await Transfers(self.connectors, self._slots, self.ssh, self.execution).get(
            batch, opts or TransferOptions())

    async def _worker(
        self, pending: Iterator[HostSpec], job: Job, emit: Emit, rate: RateLimiter | None
    ) -> None:
        for host in pending:
            if job.cancel.is_set():
                self._never_started(host, emit)
            else:
                await self._host(host, job, emit, rate)

    def _never_started(self, host: HostSpec, emit: Emit) -> None:
        now = time.time()
        safe_emit(emit, HostStarted(host.name, now))
        safe_emit(emit, HostDone(host.name, HostStatus.CANCELLED, None, "cancelled before start", now, now))

    async def _host(self, host: HostSpec, job: Job, emit: Emit, rate: RateLimiter | None) -> None:
        """One host, start to HostDone; only CancelledError leaves (after HostDone)."""
        name = host.name
        connector = self.connectors.get(host.connector)
        started = 0.0
        status, code, reason = HostStatus.CANCELLED, None, "cancelled before start"
        slot = False
        ctx: RunContext | None = None
        try:
            prepaid = False
            if rate is not None and connector is not None and connector.needs_connection(host):
                await rate.acquire()
                prepaid = True
            if not self._slots.try_acquire():
                await self._slots.acquire()
                slot = True
                if prepaid and rate is not None:
                    await rate.acquire()  # that token aged while we queued: spending it now would burst
            slot = True
            started = time.time()
            emit(HostStarted(name, started))
            reason = "cancelled"
            if connector is None:
                status, reason = HostStatus.UNREACHABLE, f"no connector named {host.connector!r}"
                return
            limit = self.output.max_line_bytes
            ctx = RunContext(
                host,
                job.command,
                LineSplitter(name, "stdout", emit, limit),
                LineSplitter(name, "stderr", emit, limit),
                kill_grace=self.execution.kill_grace,
                timeout=job.timeout,
                rate=rate,
                prepaid=prepaid,
            )
            status, code, reason = await self._attempt(connector, ctx, job.timeout)
        except asyncio.CancelledError:
            status, code = HostStatus.CANCELLED, None
            raise
        except Exception as exc:
            log.exception("running on %s failed", name)
            status, code, reason = HostStatus.FAILED, None, f"internal error: {exc!r}"
        finally:
            if slot:
                self._slots.release()
            if ctx is not None:
                try:
                    ctx.close_output()  # the partial last lines; a timed-out host keeps them too
                except Exception as exc:
                    log.exception("emitting output of %s failed", name)
                    status, code, reason = HostStatus.FAILED, None, f"internal error: {exc!r}"
            if not started:
                started = time.time()
                safe_emit(emit, HostStarted(name, started))
            safe_emit(emit, HostDone(name, status, code, reason, started, time.time()))

    async def _attempt(
        self, connector: Connector, ctx: RunContext, timeout: float
    ) -> tuple[HostStatus, int | None, str]:
        host = ctx.host
        connect_timeout = host.ssh.connect_timeout or self.ssh.connect_timeout
        try:
            async with asyncio.timeout(connect_timeout if connect_timeout > 0 else None) as timer:
                ctx.timer = timer
                result = await connector.run(ctx)
        except TimeoutError:
            if not timer.expired():
                raise
            if ctx.started:
                return HostStatus.TIMEOUT, None, f"timed out after {timeout:g}s"
            return (
                HostStatus.UNREACHABLE,
                None,
                f"connect to {_where(host)} timed out after {connect_timeout:g}s",
            )
        except HostUnreachable as exc:
            return HostStatus.UNREACHABLE, None, exc.message
        except ExecutionError as exc:
            return HostStatus.FAILED, None, exc.message
        status, reason = outcome(result)
        return status, result.code, reason
