"""The bus the config asks for (``bus.driver``): in-process, or Redis Streams for several processes."""

from __future__ import annotations

from smallyi.bus.base import Bus
from smallyi.bus.memory import MemoryBus
from smallyi.config import BusSettings


async def open_bus(settings: BusSettings) -> Bus:
    """A running bus; for Redis, connected and checked (StorageError naming ``bus.url`` if it does not answer)."""
    if settings.driver == "memory":
        return MemoryBus()
    from smallyi.bus.redis import RedisBus  # redis-py is loaded only by those who use it

    return await RedisBus.connect(settings.url, prefix=settings.prefix, stream_maxlen=settings.stream_maxlen)
