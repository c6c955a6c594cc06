"""Integration fixtures: hostile asyncssh hosts, buses of either kind. The real OpenSSH fleet (``fleet``) is the
session-wide one of tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smallyi.bus.base import Bus
from smallyi.bus.memory import MemoryBus
from smallyi.bus.redis import RedisBus
from smallyi.testing import HostileFleet
from support import BusOpener, RedisSpace


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[HostileFleet]:
    """A set of hostile hosts on 127.0.0.1 (start them with ``await hostile.start(Behaviour.X)``)."""
    async with HostileFleet(tmp_path / "hostile") as hf:
        yield hf


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def open_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusOpener]:
    """Opens buses of one kind, each test once per kind (Redis ones under the test's key prefix, on the
    test Redis); all are closed afterwards."""
    space: RedisSpace | None = request.getfixturevalue("redis_space") if request.param == "redis" else None
    opened: list[Bus] = []

    async def opener(*, stream_maxlen: int = 20_000, maxsize: int = 20_000) -> Bus:
        bus: Bus
        if space is None:
            bus = MemoryBus(maxsize=maxsize)
        else:
            bus = await RedisBus.connect(space.url, prefix=space.prefix, stream_maxlen=stream_maxlen, maxsize=maxsize)
        opened.append(bus)
        return bus

    yield opener
    for bus in opened:
        await bus.close()
