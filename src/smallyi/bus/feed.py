"""The receiving half both buses' subscriptions share: a bounded queue, read event by event or in batches."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from typing import Any, Self

from smallyi.bus.base import Event

#: put once, last: the subscription has ended
_END: Any = object()


class Feed(abc.ABC):
    """A subscription's queue: its bus puts events in, then ends it once; its user iterates.

    The end drops nothing: when the queue is full, no end marker is queued, and the user ends once it
    has taken what is there. A subscriber that overflowed so gets an unbroken first part, then the end.
    """

    def __init__(self, topic: str, maxsize: int) -> None:
        self.topic = topic
        self.overflowed = False
        #: no more events will be put
        self.closed = False
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        #: the user has seen the end
        self._done = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        # a coroutine, not a generator: cancelling it (a timeout) only cancels the queue's get
        if self._done or (self.closed and self._queue.empty()):
            self._done = True
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is _END:
            self._done = True
            raise StopAsyncIteration
        return event

    async def batches(self, limit: int) -> AsyncIterator[list[Event]]:
        while True:
            try:
                batch = [await self.__anext__()]
            except StopAsyncIteration:
                return
            while len(batch) < limit and not self._queue.empty():
                event = self._queue.get_nowait()
                if event is _END:
                    self._done = True
                    break
                batch.append(event)
            yield batch

    @abc.abstractmethod
    def close(self) -> None:
        """The user is done: the bus stops filling it (each bus lets go of its subscription its own way)."""

    def _end(self) -> None:
        """No more events: the user ends after what is queued (a waiting user is woken by the end marker,
        which finds room then: a full queue has no one waiting on it)."""
        if self.closed:
            return
        self.closed = True
        if not self._queue.full():
            self._queue.put_nowait(_END)
