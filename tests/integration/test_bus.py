"""The event bus: the in-process one and the Redis Streams one (on a real Redis) pass the same tests; two
Redis buses stand for two processes."""

from __future__ import annotations

import asyncio
import enum
import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from smallyi.auth.caller import Caller
from smallyi.auth.rbac import EVERY_HOST
from smallyi.bus import redis as redis_bus
from smallyi.bus.base import Event
from smallyi.bus.redis import RedisBus
from smallyi.config import parse_settings
from smallyi.errors import StorageError
from smallyi.execution.wire import Wire
from smallyi.inventory.selectors import Selector
from smallyi.runtime import Runtime
from smallyi.sop import automation
from smallyi.sop.records import topic as sop_topic
from smallyi.sop.service import Starter
from smallyi.sop.validate import load_sop
from smallyi.tasks.pipeline import topic
from smallyi.tasks.service import TaskRequest
from smallyi.tasks.stream import open_stream
from support import ADMIN_HASH, BusOpener, RedisSpace, drain, free_port


async def test_a_subscriber_gets_what_is_published_after_it_subscribed_in_order(open_bus: BusOpener) -> None:
    """Events published one by one or many at once arrive in order; those published before the subscription
    began do not (in one process the instant is exact), and the topic's end ends it without overflow."""
    bus = await open_bus()
    bus.publish("task:1", {"n": -1})
    sub = bus.subscribe("task:1")
    assert bus.subscribers("task:1") == 1
    for n in range(500):
        bus.publish("task:1", {"n": n})
    bus.publish_many("task:1", [{"n": n} for n in range(500, 1000)])
    bus.publish("task:2", {"n": "elsewhere"})
    bus.close_topic("task:1")
    assert await drain(sub) == [{"n": n} for n in range(1000)]
    assert not sub.overflowed
    assert bus.subscribers("task:1") == 0


async def test_closing_a_topic_ends_every_subscriber_after_what_it_has(open_bus: BusOpener) -> None:
    """Two subscribers of one topic each get its events and then the end; publishing goes on elsewhere."""
    bus = await open_bus()
    subs = [bus.subscribe("sop-run:7"), bus.subscribe("sop-run:7")]
    for n in range(3):
        bus.publish("sop-run:7", {"seq": n + 1})
    bus.close_topic("sop-run:7")
    for sub in subs:
        assert await drain(sub) == [{"seq": 1}, {"seq": 2}, {"seq": 3}]
        assert not sub.overflowed
    assert bus.subscribers("sop-run:7") == 0


async def test_batches_bring_what_waits_at_once(open_bus: BusOpener) -> None:
    """``batches(limit)`` hands over what has arrived in lists of at most ``limit`` events, in order."""
    bus = await open_bus()
    sub = bus.subscribe("task:3")
    bus.publish_many("task:3", [{"seq": n} for n in range(1, 11)])
    bus.close_topic("task:3")

    async def take() -> list[list[Event]]:
        return [b async for b in sub.batches(4)]

    batches = await asyncio.wait_for(take(), 20)
    assert [e for b in batches for e in b] == [{"seq": n} for n in range(1, 11)]
    assert all(1 <= len(b) <= 4 for b in batches)


async def test_a_wait_given_up_loses_nothing(open_bus: BusOpener) -> None:
    """Waiting for the next event with a timeout and giving up leaves the subscription whole: the next
    event still comes (the SOP and GitOps streams wait so, and poll the database in between)."""
    bus = await open_bus()
    sub = bus.subscribe("gitops-sync:1")
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(sub), 0.05)
    bus.publish("gitops-sync:1", {"seq": 1, "type": "start"})
    assert await asyncio.wait_for(anext(sub), 20) == {"seq": 1, "type": "start"}
    bus.close_topic("gitops-sync:1")
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(sub), 20)
    with pytest.raises(StopAsyncIteration):  # and it stays ended
        await anext(sub)


async def test_a_subscriber_that_lets_go_gets_nothing_more(open_bus: BusOpener) -> None:
    """``close`` ends the subscriber's iteration and takes it off the topic; others go on."""
    bus = await open_bus()
    gone, stays = bus.subscribe("task:4"), bus.subscribe("task:4")
    gone.close()
    assert bus.subscribers("task:4") == 1
    assert await drain(gone) == []
    bus.publish("task:4", {"seq": 1})
    bus.close_topic("task:4")
    assert await drain(stays) == [{"seq": 1}]


async def test_a_subscriber_left_behind_is_told_it_overflowed(open_bus: BusOpener) -> None:
    """A subscriber that takes nothing while a host prints 5,000 lines falls out of the window (its queue, or
    the stream Redis trims to ``stream_maxlen``): it ends ``overflowed`` after an unbroken first part, and
    its user catches up from the archive. Publishing never waited for it."""
    bus = await open_bus(stream_maxlen=100, maxsize=10)
    sub = bus.subscribe("task:5")
    for n in range(5000):
        bus.publish("task:5", {"seq": n})
    bus.close_topic("task:5")
    got = await drain(sub)
    assert sub.overflowed
    assert got == [{"seq": n} for n in range(len(got))] and len(got) < 200
    assert bus.subscribers("task:5") == 0


# -- Redis only ------------------------------------------------------------------------------------


class Color(enum.StrEnum):
    RED = "red"


@pytest.mark.redis
async def test_two_processes_share_topics_through_redis(redis_space: RedisSpace) -> None:
    """A subscriber on one bus gets, in order, what another bus (another process) publishes after the
    subscription began, and ends when that process closes the topic; each bus counts its own subscribers."""
    worker = await RedisBus.connect(redis_space.url, prefix=redis_space.prefix)
    replica = await RedisBus.connect(redis_space.url, prefix=redis_space.prefix)
    try:
        here, there = worker.subscribe("task:9"), replica.subscribe("task:9")
        await replica.flush()  # the subscription's start is taken before the worker publishes
        lines = [{"seq": n, "host": f"web-{n % 7}", "stream": "stdout", "text": f"line {n}"} for n in range(3000)]
        for i in range(0, 3000, 250):
            worker.publish_many("task:9", lines[i:i + 250])
            await asyncio.sleep(0)
        worker.close_topic("task:9")
        assert (worker.subscribers("task:9"), replica.subscribers("task:9")) == (1, 1)
        assert await drain(there) == lines
        assert await drain(here) == lines
        assert not there.overflowed and not here.overflowed
    finally:
        await worker.close()
        await replica.close()


@pytest.mark.redis
async def test_events_cross_as_json(redis_space: RedisSpace) -> None:
    """What JSON holds arrives equal (text in any script, nested data); a tuple arrives as a list and a str
    enum as its string; a value JSON cannot hold is refused at publish, naming the topic."""
    bus = await RedisBus.connect(redis_space.url, prefix=redis_space.prefix)
    try:
        sub = bus.subscribe("task:10")
        event = {"seq": 1, "text": "中文 ünïcode ✓ \x1b[31m\"quoted\"\\", "data": {"n": [1, 2.5, None, True]},
                 "at": "2026-12-07T18:30:00.000Z"}
        bus.publish("task:10", event)
        bus.publish("task:10", {"seq": 2, "pair": (1, 2), "status": Color.RED})
        with pytest.raises(TypeError, match="bus topic task:10: the Redis bus sends events as JSON"):
            bus.publish("task:10", {"seq": 3, "when": object()})
        bus.close_topic("task:10")
        assert await drain(sub) == [event, {"seq": 2, "pair": [1, 2], "status": "red"}]
    finally:
        await bus.close()


@pytest.mark.redis
async def test_redis_keeps_a_bounded_window_that_expires(redis_space: RedisSpace) -> None:
    """A topic's stream holds about ``stream_maxlen`` entries however much is published, expires a day after
    its last write, and shortly after its topic is closed."""
    bus = await RedisBus.connect(redis_space.url, prefix=redis_space.prefix, stream_maxlen=100)
    client = aioredis.Redis.from_url(redis_space.url)
    key = f"{redis_space.prefix}bus:task:11"
    try:
        for n in range(3000):
            bus.publish("task:11", {"seq": n})
        await bus.flush()
        assert 100 <= await client.xlen(key) <= 300  # MAXLEN ~ trims whole nodes of 100 entries
        assert redis_bus.CLOSED_TTL < await client.ttl(key) <= redis_bus.IDLE_TTL
        bus.close_topic("task:11")
        await bus.flush()
        assert 0 < await client.ttl(key) <= redis_bus.CLOSED_TTL
    finally:
        await bus.close()
        await client.aclose()


async def test_an_unreachable_redis_is_named_at_start() -> None:
    """No Redis at ``bus.url``: a StorageError that names the key and the URL, without its password."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(StorageError, match=r"event bus redis://:\*\*\*@127\.0\.0\.1:\d+/0 cannot be used: .*"
                                           r"check bus\.url in the config and that Redis is running") as caught:
        await RedisBus.connect(url)
    assert "s3cret" not in caught.value.message


# -- a real task on the local host, through the runtime ----------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def bus_yaml(request: pytest.FixtureRequest) -> str:
    """The config's bus section, for each driver."""
    if request.param == "memory":
        return ""
    space: RedisSpace = request.getfixturevalue("redis_space")
    return f"bus:\n  driver: redis\n  url: {space.url}\n  prefix: \"{space.prefix}\"\n"


async def test_a_task_output_reaches_viewers_through_the_bus(tmp_path: Path, bus_yaml: str) -> None:
    """A task on ``local`` publishes every event (start, lines, the cut, done, the task's end) to its topic,
    and a subscriber gets them exactly as the pipeline made them; a viewer that stops mid-task and resumes
    from the last ``seq`` it saw gets the rest, nothing twice, nothing missing."""
    settings = parse_settings(f"database:\n  source: {tmp_path}/b.db\nsecrets:\n  key_file: {tmp_path}/k\n"
                              "output:\n  head_bytes: 400\n  tail_bytes: 400\n" + bus_yaml, base_dir=tmp_path)
    rt = await Runtime.open(settings, kind="cli")
    try:
        heard: list[Wire] = []
        cmd = "for i in $(seq 1 300); do echo line$i; done; sleep 1; for i in $(seq 301 400); do echo line$i; done"
        tid = (await rt.tasks.submit(TaskRequest(Selector(hosts=("local",)), cmd), Caller("t"),
                                     listener=heard.append)).task_id
        sub = rt.bus.subscribe(topic(tid))
        first: list[dict[str, object]] = []
        stream = await open_stream(rt.tasks, rt.archive, tid, after=0, scope=EVERY_HOST)
        async for frame in stream:
            first.extend(json.loads(frame).get("events", []))
            if len(first) >= 150:
                break
        await stream.aclose()
        rest: list[dict[str, object]] = []
        stream = await open_stream(rt.tasks, rt.archive, tid, after=int(str(first[-1]["seq"])), scope=EVERY_HOST)
        async for frame in stream:
            rest.extend(json.loads(frame).get("events", []))
        published = await drain(sub)
        await rt.tasks.wait(tid)
    finally:
        await rt.close()
    assert [e["seq"] for e in heard] == list(range(1, len(heard) + 1))
    assert {e["stream"] for e in heard} == {"start", "stdout", "cut", "done"}
    # what subscribers got is what the pipeline published (through JSON, for Redis), then the task's end
    assert published[:-1] == heard
    assert published[-1] == {"seq": None, "stream": "task", "status": "success", "counts": {"success": 1}}
    viewed = first + rest
    assert [e["seq"] for e in viewed] == list(range(1, len(viewed) + 1))
    texts = [e["text"] for e in viewed if e["stream"] == "stdout"]
    assert texts[:10] == [f"line{i}" for i in range(1, 11)] and texts[-1] == "line400"


async def test_sop_run_events_cross_the_bus_as_they_are_stored(tmp_path: Path, bus_yaml: str) -> None:
    """An SOP run's events (its steps on ``local``, their results) reach a subscriber of ``sop-run:<id>``
    equal to what the run stored, and the topic ends with the run."""
    users = f'auth:\n  users:\n    - {{username: alice, password_hash: "{ADMIN_HASH}"}}\n'
    settings = parse_settings(f"database:\n  source: {tmp_path}/s.db\nsecrets:\n  key_file: {tmp_path}/k\n"
                              + users + bus_yaml, base_dir=tmp_path)
    rt = await Runtime.open(settings, kind="cli")
    auto = automation.build(rt)
    try:
        source = ("steps:\n  - id: greet\n    type: exec\n    cmd: \"sleep 0.5; echo hello\"\n"
                  "  - id: again\n    type: exec\n    cmd: \"echo again\"\n    needs: [greet]\n")
        sop, _ = load_sop(source)
        run_id = await auto.sop.start(sop, source, starter=Starter("alice"), target={"hosts": ["local"]})
        sub = rt.bus.subscribe(sop_topic(run_id))
        got = await drain(sub)
        status, _ = await auto.sop.wait(run_id)
        stored = await auto.sop.records.events(run_id)
    finally:
        await auto.close()
        await rt.close()
    assert status == "success" and not sub.overflowed
    # the run had begun before the test could subscribe; from there on, every event, as stored
    assert got and got == stored[-len(got):]
    assert {"step.start", "step.finish", "run.finish"} <= {e["kind"] for e in got}
