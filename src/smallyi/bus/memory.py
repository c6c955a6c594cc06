"""In-process event bus with bounded subscriber queues.

A subscriber that falls more than ``maxsize`` events behind is marked ``overflowed`` and gets no more
events: it must resubscribe and catch up from the archive (events carry sequence numbers for that).
Publishing never blocks and never grows memory without bound, whatever a host prints.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from smallyi.bus.base import Event
from smallyi.bus.feed import Feed


class Subscription(Feed):
    """An async iterator of events on one topic; ends when the topic closes or the queue overflows."""

    def __init__(self, bus: MemoryBus, topic: str, maxsize: int) -> None:
        super().__init__(topic, maxsize)
        self._bus = bus

    def _offer(self, event: Event) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._finish()

    def _finish(self) -> None:
        if self.closed:
            return
        self._bus._drop(self)
        self._end()

    def close(self) -> None:
        self._finish()


class MemoryBus:
    """Topics are strings (e.g. ``task:42``); events are any Python values, handed over as they are."""

    def __init__(self, *, maxsize: int = 20_000) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._maxsize = maxsize

    def subscribe(self, topic: str, *, maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, topic, maxsize or self._maxsize)
        self._subs[topic].add(sub)
        return sub

    def publish(self, topic: str, event: Event) -> None:
        for sub in tuple(self._subs.get(topic, ())):
            sub._offer(event)

    def publish_many(self, topic: str, events: Sequence[Event]) -> None:
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

    async def close(self) -> None:
        """Nothing to let go of: subscriptions still open end with their users."""

    def _drop(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.topic]
