"""``python -m bench.bus``: lines per second through the event bus, in-process and over Redis Streams.

    python -m bench.bus                                    # Redis on 127.0.0.1:6379, 200,000 lines
    python -m bench.bus --url redis://127.0.0.1:6380/0 --lines 50000

Two figures per bus, each the best of ``--rounds``:
- publish: what ``publish`` costs the event loop per line (the pipeline calls it once per line, synchronously);
- through: lines per second from the first ``publish`` until a subscriber has taken the last one (for Redis,
  the subscriber is on a second bus instance, as a viewer on another replica would be).
The lines are output events as the task pipeline publishes them (about 120 bytes of JSON each).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import redis.asyncio as aioredis

from smallyi.bus.base import Bus
from smallyi.bus.memory import MemoryBus
from smallyi.bus.redis import RedisBus


def line(n: int) -> dict[str, object]:
    return {"seq": n, "host": f"web-{n % 500:03d}", "stream": "stdout",
            "text": f"2026-12-07 18:30:00 INFO request {n} served in 12 ms", "at": "2026-12-07T18:30:00.123Z"}


async def publish_cost(bus: Bus, lines: list[dict[str, object]], topic: str) -> float:
    """Seconds per line that ``publish`` holds the event loop."""
    started = time.perf_counter()
    for event in lines:
        bus.publish(topic, event)
    took = time.perf_counter() - started
    bus.close_topic(topic)
    if isinstance(bus, RedisBus):
        await bus.flush()
    return took / len(lines)


async def through(publisher: Bus, subscriber: Bus, lines: list[dict[str, object]], topic: str) -> float:
    """Lines per second from the first publish to the subscriber's last line, published 1,000 at a time with
    the event loop let go in between (as the engine's output arrives)."""
    sub = subscriber.subscribe(topic, maxsize=len(lines) + 1)
    if isinstance(subscriber, RedisBus):
        await subscriber.flush()  # the subscription has started before the first line
    got = 0

    async def take() -> None:
        nonlocal got
        async for batch in sub.batches(1000):
            got += len(batch)

    taker = asyncio.create_task(take())
    started = time.perf_counter()
    for i in range(0, len(lines), 1000):
        for event in lines[i:i + 1000]:
            publisher.publish(topic, event)
        await asyncio.sleep(0)
    publisher.close_topic(topic)
    await taker
    took = time.perf_counter() - started
    assert got == len(lines) and not sub.overflowed, (got, sub.overflowed)
    return len(lines) / took


async def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--lines", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    lines = [line(n) for n in range(1, args.lines + 1)]
    prefix = f"small-yi-bench-{uuid.uuid4().hex[:8]}:"
    rows = []
    memory = MemoryBus(maxsize=args.lines + 1)
    cost = min([await publish_cost(memory, lines, f"cost:{r}") for r in range(args.rounds)])
    rate = max([await through(memory, memory, lines, f"through:{r}") for r in range(args.rounds)])
    rows.append(("memory", cost, rate))
    worker = await RedisBus.connect(args.url, prefix=prefix, stream_maxlen=args.lines + 1000)
    replica = await RedisBus.connect(args.url, prefix=prefix, stream_maxlen=args.lines + 1000)
    try:
        cost = min([await publish_cost(worker, lines, f"cost:{r}") for r in range(args.rounds)])
        rate = max([await through(worker, replica, lines, f"through:{r}") for r in range(args.rounds)])
        rows.append(("redis", cost, rate))
    finally:
        await worker.close()
        await replica.close()
        client = aioredis.Redis.from_url(args.url)
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    print(f"{args.lines:,} lines, best of {args.rounds}")
    print(f"{'bus':8} {'publish (µs/line)':>18} {'through (lines/s)':>18}")
    for name, cost, rate in rows:
        print(f"{name:8} {cost * 1e6:18.2f} {rate:18,.0f}")


if __name__ == "__main__":
    asyncio.run(main())
