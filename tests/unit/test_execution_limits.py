"""Global session slots and the connection rate limiter."""

from __future__ import annotations

import asyncio

import pytest

from smallyi.execution.limits import RateLimiter, Slots


async def test_slots_count_and_free() -> None:
    """free says how many slots are left; release gives them back."""
    s = Slots(2)
    await s.acquire()
    assert s.free == 1 and s.in_use == 1
    assert s.try_acquire()
    assert s.free == 0 and not s.try_acquire()
    s.release()
    s.release()
    assert s.free == 2 and s.peak == 2


async def test_slots_fifo_and_no_jumping_the_queue() -> None:
    """Waiters get slots in order; try_acquire does not overtake a waiter."""
    s = Slots(1)
    await s.acquire()
    order: list[int] = []

    async def wait(i: int) -> None:
        await s.acquire()
        order.append(i)

    tasks = [asyncio.create_task(wait(i)) for i in range(3)]
    await asyncio.sleep(0)
    s.release()
    assert not s.try_acquire()  # slot handed to waiter 0, not to us
    for _ in range(3):
        await asyncio.sleep(0)
        s.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    """A waiter cancelled after being handed a slot passes it on."""
    s = Slots(1)
    await s.acquire()
    t1 = asyncio.create_task(s.acquire())
    t2 = asyncio.create_task(s.acquire())
    await asyncio.sleep(0)
    s.release()  # handed to t1
    t1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t1
    await asyncio.wait_for(t2, 1)  # t1 passed it on
    s.release()
    assert s.free == 1 and s.waiting == 0


async def test_cancelling_many_waiters_is_cheap_and_clean() -> None:
    """Cancelled waiters are skipped, and the count of waiting ones stays right."""
    s = Slots(1)
    await s.acquire()
    tasks = [asyncio.create_task(s.acquire()) for _ in range(1000)]
    await asyncio.sleep(0)
    assert s.waiting == 1000
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert s.waiting == 0
    s.release()
    assert s.try_acquire()


async def test_rate_limiter_spaces_acquisitions() -> None:
    """N tokens at rate R take about (N-1)/R seconds, the first at once."""
    r = RateLimiter(50.0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await r.acquire()
    assert loop.time() - t0 < 0.01
    await asyncio.gather(*(r.acquire() for _ in range(10)))
    assert 0.18 <= loop.time() - t0 < 0.5


def test_rate_limiter_rejects_zero() -> None:
    """Rate 0 means unlimited: the engine uses no limiter at all."""
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_slots_resize_up_lets_waiters_in_and_down_hands_nothing_over_until_below() -> None:
    """A reloaded execution.max_concurrency: raised, queued sessions start at once; lowered, the sessions
    running finish but no waiter takes a slot until fewer than the new capacity run."""
    slots = Slots(2)
    assert slots.try_acquire() and slots.try_acquire()
    waiters = [asyncio.ensure_future(slots.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    slots.resize(3)
    await asyncio.sleep(0)
    assert [w.done() for w in waiters] == [True, False, False] and slots.in_use == 3
    slots.resize(1)
    slots.release()
    await asyncio.sleep(0)
    assert not waiters[1].done() and slots.in_use == 2  # 2 run, over the capacity of 1: nobody starts
    slots.release()
    await asyncio.sleep(0)
    assert not waiters[1].done() and slots.in_use == 1
    slots.release()
    await asyncio.sleep(0)
    assert waiters[1].done() and not waiters[2].done() and slots.in_use == 1
    waiters[2].cancel()
    await asyncio.gather(waiters[2], return_exceptions=True)
