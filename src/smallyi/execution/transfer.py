"""Put and get files on many hosts, within the same limits as commands.

Each host takes a global session slot (``execution.max_concurrency``, shared with commands), the
job's connection rate applies to new connections only, and ``concurrency`` hosts run at once. One
host's transfer is bounded by ``ssh.connect_timeout`` + ``timeout`` (0: ``execution.default_timeout``).
Every host gets exactly one :class:`HostFiles`, whatever happens: unreachable, timed out, cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from smallyi.config import ExecutionSettings, SSHSettings
from smallyi.errors import ExecutionError, HostUnreachable
from smallyi.execution.connectors.base import Connector
from smallyi.execution.files import Admit, FilePut, FileResult, HostFiles
from smallyi.execution.job import run_until_cancel
from smallyi.execution.limits import RateLimiter, Slots
from smallyi.inventory.hosts import HostSpec
from smallyi.types import HostStatus

log = logging.getLogger(__name__)

T = TypeVar("T")
Call = Callable[[Connector, HostSpec, T, Admit], Awaitable[list[FileResult]]]


@dataclass
class TransferOptions:
    """Limits of one transfer: as a task's (0 = the configured default), plus a per-host callback."""

    concurrency: int = 0
    rate: float = 0.0
    timeout: float = 0.0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    #: called as each host finishes (live progress)
    on_done: Callable[[HostFiles], None] | None = None


class Transfers:
    """The fan-out; the engine builds one per call (``engine.put_files`` / ``engine.get_files``)."""

    def __init__(self, connectors: Mapping[str, Connector], slots: Slots, ssh: SSHSettings,
                 execution: ExecutionSettings) -> None:
        self.connectors = connectors
        self.slots = slots
        self.ssh = ssh
        self.execution = execution

    async def put(self, batch: Mapping[HostSpec, Sequence[FilePut]], opts: TransferOptions) -> dict[str, HostFiles]:
        async def call(c: Connector, host: HostSpec, files: Sequence[FilePut], admit: Admit) -> list[FileResult]:
            return await c.put_files(host, files, admit)

        return await self._fan_out(batch, call, opts)

    async def get(self, batch: Mapping[HostSpec, Sequence[str]], opts: TransferOptions) -> dict[str, HostFiles]:
        async def call(c: Connector, host: HostSpec, paths: Sequence[str], admit: Admit) -> list[FileResult]:
            return await c.get_files(host, paths, admit)

        return await self._fan_out(batch, call, opts)

    async def _fan_out(self, batch: Mapping[HostSpec, T], call: Call[T], opts: TransferOptions) -> dict[str, HostFiles]:
        results: dict[str, HostFiles] = {}
        if not batch:
            return results
        pending = iter(batch.items())
        workers = min(opts.concurrency or self.execution.default_concurrency, len(batch))
        rate = RateLimiter(opts.rate) if opts.rate > 0 else None
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._worker(pending, call, opts, rate, results)) for _ in range(workers)]
        await run_until_cancel(opts.cancel, tasks, "transfer worker")
        for host in batch:
            if host.name not in results:
                now = time.time()
                self._finish(results, opts, HostFiles(host.name, HostStatus.CANCELLED, "cancelled before start",
                                                      [], now, now))
        return results

    async def _worker(self, pending: Iterator[tuple[HostSpec, T]], call: Call[T], opts: TransferOptions,
                      rate: RateLimiter | None, results: dict[str, HostFiles]) -> None:
        for host, arg in pending:
            if opts.cancel.is_set():
                return
            self._finish(results, opts, await self._host(host, arg, call, opts, rate, results))

    def _finish(self, results: dict[str, HostFiles], opts: TransferOptions, done: HostFiles) -> None:
        results[done.host] = done
        if opts.on_done is not None:
            try:
                opts.on_done(done)
            except Exception:
                log.exception("transfer progress callback failed")

    async def _host(self, host: HostSpec, arg: T, call: Call[T], opts: TransferOptions,
                    rate: RateLimiter | None, results: dict[str, HostFiles]) -> HostFiles:
        started = time.time()
        connector = self.connectors.get(host.connector)
        if connector is None:
            return HostFiles(host.name, HostStatus.UNREACHABLE, f"no connector named {host.connector!r}",
                             [], started, time.time())
        prepaid = False

        async def admit() -> None:
            nonlocal prepaid
            if prepaid:
                prepaid = False
            elif rate is not None:
                await rate.acquire()

        timeout = opts.timeout or self.execution.default_timeout
        limit = (host.ssh.connect_timeout or self.ssh.connect_timeout) + timeout
        status, reason, files = HostStatus.CANCELLED, "cancelled", list[FileResult]()
        slot = False
        try:
            if rate is not None and connector.needs_connection(host):
                await rate.acquire()
                prepaid = True
            await self.slots.acquire()
            slot = True
            started = time.time()
            async with asyncio.timeout(limit if limit > 0 else None):
                files = await call(connector, host, arg, admit)
            bad = [f for f in files if not f.ok]
            status = HostStatus.FAILED if bad else HostStatus.SUCCESS
            reason = "" if not bad else bad[0].error + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
        except TimeoutError:
            status, reason = HostStatus.TIMEOUT, f"file transfer timed out after {limit:g}s"
        except HostUnreachable as exc:
            status, reason = HostStatus.UNREACHABLE, exc.message
        except ExecutionError as exc:
            status, reason = HostStatus.FAILED, exc.message
        except asyncio.CancelledError:
            self._finish(results, opts, HostFiles(host.name, HostStatus.CANCELLED, "cancelled", [], started,
                                                  time.time()))
            raise
        except Exception as exc:
            log.exception("file transfer on %s failed", host.name)
            status, reason = HostStatus.FAILED, f"internal error: {exc!r}"
        finally:
            if slot:
                self.slots.release()
        return HostFiles(host.name, status, reason, files, started, time.time())
