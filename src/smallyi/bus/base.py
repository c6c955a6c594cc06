"""What publishers and subscribers use, whichever bus runs underneath.

Events are JSON values: in practice dicts (a task's output line, an SOP run's event, a GitOps sync's
progress). The in-process bus hands the very object to its subscribers; the Redis bus sends JSON, so a
tuple arrives as a list and a str enum as its string, and a value JSON cannot hold is refused at
``publish`` (TypeError).

A subscription sees the events published on its topic after ``subscribe`` returned, in order, until the
topic is closed (``close_topic``) or the subscriber falls too far behind: then it ends with
``overflowed`` set, and its user catches up from the archive, which stays the source of truth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, Self

#: one event: a JSON value (see the module docstring)
Event = Any


class Subscription(Protocol):
    """An async iterator of one topic's events; it ends when the topic closes, the subscriber falls too far
    behind (``overflowed``), or ``close`` is called.

    ``anext(sub)`` is a plain coroutine: waiting for it with a timeout (``asyncio.wait_for``) and giving up
    loses no event and leaves the subscription usable.
    """

    topic: str

    @property
    def overflowed(self) -> bool:
        """True when events were lost to this subscriber: it ended early and must catch up elsewhere."""
        ...

    def __aiter__(self) -> Self: ...

    async def __anext__(self) -> Event: ...

    def batches(self, limit: int) -> AsyncIterator[list[Event]]:
        """As iterating, but what is already here comes at once (up to ``limit`` events), for a sender that
        sends one message per batch instead of one per event."""
        ...

    def close(self) -> None:
        """Stop receiving (the viewer went away): iteration ends after what is queued already."""
        ...


class Bus(Protocol):
    """Topics are strings (``task:42``, ``sop-run:7``, ``gitops-sync:3``); publishing never blocks."""

    def subscribe(self, topic: str, *, maxsize: int | None = None) -> Subscription:
        """A subscription to ``topic`` holding at most ``maxsize`` undelivered events in this process."""
        ...

    def publish(self, topic: str, event: Event) -> None: ...

    def publish_many(self, topic: str, events: Sequence[Event]) -> None:
        """``publish`` for each, in order, at the cost of one call."""
        ...

    def close_topic(self, topic: str) -> None:
        """End every subscription on ``topic``, in every process the bus reaches (the task finished)."""
        ...

    def subscribers(self, topic: str) -> int:
        """Subscriptions on ``topic`` open in this process."""
        ...

    async def close(self) -> None:
        """Deliver what was published and let go of connections (the process stops)."""
        ...
