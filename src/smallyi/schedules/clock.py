"""The scheduler's time source: the system clock, or a fake one that tests move by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Time stands still until :meth:`advance`; sleepers wake when their deadline is reached."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when
        self._changed.set()
        self._changed = asyncio.Event()

    def advance(self, seconds: float) -> datetime:
        self.set(self._now + timedelta(seconds=seconds))
        return self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + timedelta(seconds=seconds)
        while self._now < deadline:
            await self._changed.wait()
