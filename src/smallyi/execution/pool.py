"""Open connections kept for the next command, keyed by what tells them apart: (address, port, user,
and for SSH the host's own key and host-key settings).

Generic over the connection type, so the SSH connector and the fake one share it and its tests.
A connection carries several sessions at once (up to ``max_channels``, below OpenSSH's default
``MaxSessions 10``); one being opened for a key is awaited by others wanting the same key rather than
opened twice. Idle connections are closed after ``idle_timeout`` and, past ``max_size``, least recently
used first. Every operation is O(1) in the pool's size except the sweep, which touches only the
connections it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

#: a connector's own key: connections with equal keys are interchangeable
Key = Hashable

#: sessions one connection carries at once; OpenSSH refuses more than MaxSessions (default 10)
MAX_CHANNELS = 8


class Connection(Protocol):
    def is_closed(self) -> bool: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)


class Lease(Generic[C]):
    """One pooled connection and how many sessions use it now."""

    __slots__ = ("active", "conn", "gone", "key", "last_used", "limit")

    def __init__(self, key: Key, conn: C) -> None:
        self.key = key
        self.conn = conn
        self.active = 0
        self.limit = MAX_CHANNELS
        self.last_used = 0.0
        self.gone = False

    def usable(self) -> bool:
        return not self.gone and self.active < self.limit and not self.conn.is_closed()


class Pool(Generic[C]):
    """See the module docstring. ``acquire`` → use ``lease.conn`` → ``release`` (or ``discard``)."""

    def __init__(self, *, max_size: int, idle_timeout: float, max_channels: int = MAX_CHANNELS) -> None:
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.max_channels = max_channels
        self._by_key: dict[Key, list[Lease[C]]] = {}
        #: idle leases, least recently used first
        self._idle: OrderedDict[Lease[C], None] = OrderedDict()
        self._opening: dict[Key, asyncio.Future[None]] = {}
        self._size = 0
        self._sweeper: asyncio.Task[None] | None = None
        self.opened = 0
        self.reused = 0
        self.closed = 0
        #: set by :meth:`retire`: no connection is kept once its sessions end
        self.retired = False

    def __len__(self) -> int:
        return self._size

    def has_usable(self, key: Key) -> bool:
        """True if ``acquire(key)`` would reuse a connection now (the engine skips the rate limit)."""
        return any(lease.usable() for lease in self._by_key.get(key, ()))

    async def acquire(self, key: Key, open_conn: Callable[[], Awaitable[C]]) -> tuple[Lease[C], bool]:
        """A lease on a live connection for ``key`` and whether it was just opened.

        Reuses one with a free session; else waits for one being opened for the same key; else opens
        one with ``open_conn`` (whose errors propagate).
        """
        while True:
            for lease in self._by_key.get(key, ()):
                if lease.usable():
                    self._take(lease)
                    self.reused += 1
                    return lease, False
            pending = self._opening.get(key)
            if pending is None:
                break
            await asyncio.shield(pending)  # never fails: then reuse it, or open our own
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._opening[key] = done
        try:
            conn = await open_conn()
        finally:
            del self._opening[key]
            done.set_result(None)
        lease = Lease(key, conn)
        lease.limit = self.max_channels
        self._by_key.setdefault(key, []).append(lease)
        self._size += 1
        self.opened += 1
        self._take(lease)
        self._trim()
        self._start_sweeper()
        return lease, True

    def release(self, lease: Lease[C]) -> None:
        """The session using ``lease`` ended; the connection stays for the next command."""
        lease.active -= 1
        if lease.gone:
            return
        if lease.conn.is_closed() or (self.retired and lease.active == 0):
            self._drop(lease)
            return
        if lease.active == 0:
            lease.last_used = asyncio.get_running_loop().time()
            self._idle[lease] = None
            self._trim()

    def discard(self, lease: Lease[C]) -> None:
        """Forget ``lease`` and close its connection: it is broken, or closed under us."""
        if not lease.gone:
            self._drop(lease)

    def leases(self) -> list[Lease[C]]:
        """Every pooled connection's lease, busy or idle (for stats and tests)."""
        return [lease for leases in self._by_key.values() for lease in leases]

    def stats(self) -> dict[str, int]:
        return {
            "connections": self._size,
            "idle": len(self._idle),
            "sessions": sum(lease.active for lease in self.leases()),
            "opened": self.opened,
            "reused": self.reused,
            "closed": self.closed,
        }

    async def close(self) -> None:
        """Close every connection (sessions on them end); the pool stays usable, empty."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for lease in self.leases():
            self._drop(lease)

    def retire(self) -> None:
        """Keep no connection from now on (they were made with settings a reload replaced): idle ones close
        now, busy ones as their last session ends; the sessions under way are not cut."""
        self.retired = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for lease in list(self._idle):
            self._drop(lease)

    def _take(self, lease: Lease[C]) -> None:
        if lease.active == 0:
            self._idle.pop(lease, None)
        lease.active += 1

    def _drop(self, lease: Lease[C]) -> None:
        lease.gone = True
        self._idle.pop(lease, None)
        leases = self._by_key.get(lease.key)
        if leases is not None:
            leases.remove(lease)
            if not leases:
                del self._by_key[lease.key]
        self._size -= 1
        self.closed += 1
        try:
            lease.conn.close()
        except Exception:  # a connection that fails to close is gone all the same
            log.debug("closing a pooled connection failed", exc_info=True)

    def _trim(self) -> None:
        while self._size > self.max_size and self._idle:
            lease, _ = self._idle.popitem(last=False)
            self._drop(lease)

    def _start_sweeper(self) -> None:
        if self._sweeper is None and self.idle_timeout > 0 and not self.retired:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        interval = max(0.05, min(self.idle_timeout / 4, 30.0))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            cutoff = loop.time() - self.idle_timeout
            while self._idle:
                lease = next(iter(self._idle))
                if lease.last_used > cutoff:
                    break
                self._drop(lease)
