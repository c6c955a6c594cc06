"""In-process event bus with bounded subscriber queues.

A subscriber that falls more than ``maxsize`` events behind is marked ``overflowed`` and gets no more
events: it must resubscribe and catch up from the archive (events carry sequence numbers for that).
Publishing never blocks and never grows memory without bound, whatever a host prints.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any


class Subscription:
    """An async iterator of events on one topic; ends when the topic closes or the queue overflows."""

    def __init__(self, bus: MemoryBus, topic: str, maxsize: int) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def _offer(self, event: Any) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._finish()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._drop(self)
        try:
            self.queue.put_nowait(_END)
        except asyncio.QueueFull:
            # make room for the end marker: the subscriber resumes from the archive anyway
            self.queue.get_nowait()
            self.queue.put_nowait(_END)

    def close(self) -> None:
        self._finish()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Any]:
        while True:
            event = await self.queue.get()
            if event is _END:
                return
            yield event


    async def batches(self, limit: int) -> AsyncIterator[list[Any]]:
        """As iterating, but what is already queued comes at once (up to ``limit`` events), for a sender
        that sends one message per batch instead of one per event."""
        while True:
            event = await self.queue.get()
            if event is _END:
                return
            batch = [event]
            while len(batch) < limit and not self.queue.empty():
                event = self.queue.get_nowait()
                if event is _END:
                    yield batch
                    return
                batch.append(event)
            yield batch


_END = object()


class MemoryBus:
    """Topics are strings (e.g. ``task:42``); events are any Python values."""

    def __init__(self, *, maxsize: int = 20_000) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._maxsize = maxsize

    def subscribe(self, topic: str, *, maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, topic, maxsize or self._maxsize)
        self._subs[topic].add(sub)
        return sub

    def publish(self, topic: str, event: Any) -> None:
        for sub in tuple(self._subs.get(topic, ())):
            sub._offer(event)

    def publish_many(self, topic: str, events: list[Any]) -> None:
        subs = tuple(self._subs.get(topic, ()))
        for sub in subs:
            for event in events:
                sub._offer(event)
                if sub.closed:
                    break

    def close_topic(self, topic: str) -> None:
        """End every subscription on ``topic`` (the task finished)."""
        for sub in tuple(self._subs.get(topic, ())):
            sub._finish()

    def subscribers(self, topic: str) -> int:
        return len(self._subs.get(topic, ()))

    def _drop(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.topic]
