"""The engine's two brakes: a global cap on host sessions, and a per-job connection rate.

Per-job concurrency needs no object: a job runs with that many workers.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    """A FIFO counting semaphore that can say how many slots are free now (for the task queue).

    Written out rather than wrapping asyncio.Semaphore so that ``free`` and ``try_acquire`` need no
    private attributes; a cancelled waiter is skipped lazily, so mass cancellation stays O(n).
    """

    __slots__ = ("_waiters", "_waiting", "capacity", "in_use", "peak")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._waiting = 0

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.in_use)

    @property
    def waiting(self) -> int:
        return self._waiting

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody is queued for it; never waits."""
        if self.in_use < self.capacity and not self._waiting:
            self.in_use += 1
            if self.in_use > self.peak:
                self.peak = self.in_use
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._waiting += 1
        try:
            await fut  # release() hands its slot over: in_use already counts us
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            raise
        finally:
            self._waiting -= 1
        if self.in_use > self.peak:
            self.peak = self.in_use

    def release(self) -> None:
        while self._waiters and self.in_use <= self.capacity:  # over a lowered capacity: hand nothing over
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.in_use -= 1

    def resize(self, capacity: int) -> None:
        """A new capacity (a reloaded ``execution.max_concurrency``). Raised: waiters take the new slots now;
        lowered: sessions running stay, and slots are handed over again once fewer than ``capacity`` run."""
        self.capacity = capacity
        while self._waiters and self.in_use < capacity:
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_use += 1
                fut.set_result(None)


class RateLimiter:
    """At most ``rate`` acquisitions per second, evenly spaced, first come first served.

    A token bucket of depth one: each caller reserves the next free instant and sleeps until it, so
    waiting costs one timer per caller and no caller is woken to find the token gone.
    """

    __slots__ = ("_interval", "_next", "rate")

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (0 means unlimited: use no limiter)")
        self.rate = rate
        self._interval = 1.0 / rate
        self._next = 0.0

    async def acquire(self) -> None:
        now = asyncio.get_running_loop().time()
        at = max(now, self._next)
        self._next = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)
