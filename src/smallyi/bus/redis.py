"""The event bus over Redis Streams: a topic published in one process reaches subscribers in any other.

Each topic is a stream, ``<prefix>bus:<topic>``. ``publish`` is synchronous and cheap: it encodes the
event as JSON and queues it; one writer task sends what queued meanwhile in one pipeline, each topic's run
of events as one call of a small script (``XADD ... MAXLEN ~ stream_maxlen`` per event: Redis keeps a
bounded window, the archive keeps everything). Each subscription has a reader task doing ``XREAD BLOCK``
from where it started into its bounded local queue, waiting while that queue is full; a reader that finds
entries it had not read trimmed away ends its subscription ``overflowed``, as the in-process bus does for
a slow subscriber, and its user catches up from the archive.

Order. The writer sends this process's operations in the order they were made, and a subscription's start
is taken in that same order (``XINFO STREAM`` within the pipeline): a subscriber sees exactly what this
process publishes after ``subscribe`` returned. Between processes there is no such instant; the events
carry sequence numbers, and their users skip what they saw (``tasks/stream.py``).

``close_topic`` appends an end marker (subscribers in every process end) and lets the stream expire
``CLOSED_TTL`` later; a stream written to keeps expiring ``IDLE_TTL`` after its last write, so a process
that died mid-task leaves nothing behind for long. When Redis refuses a write, or too much waits for it,
the events are dropped and a gap marker goes to their topic before its next entry: every subscriber of
that topic ends ``overflowed`` instead of missing lines silently. Redis restarting under a running
process is not covered yet (nor tested): readers that lose their connection end ``overflowed`` and their
users fall back to the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from smallyi.bus.base import Event
from smallyi.bus.feed import Feed
from smallyi.config import redact_url
from smallyi.errors import ConfigError, StorageError

log = logging.getLogger(__name__)

#: how long one ``XREAD`` waits for entries before the reader looks again, and so how long a closed
#: subscription may keep its connection (milliseconds)
BLOCK_MS = 2_000
#: connections the subscriptions of one bus may hold (one each while it waits for entries)
READERS_MAX = 10_000
#: entries one ``XREAD`` takes at most
READ_COUNT = 1_000
#: operations one pipeline carries at most
PIPELINE_MAX = 20_000
#: events waiting for Redis at most: past this, new ones are dropped (their topic gets a gap marker)
PENDING_MAX = 200_000
#: a stream expires this long after its last write (seconds)
IDLE_TTL = 24 * 3600
#: a closed topic's stream stays this long for readers still catching up (seconds)
CLOSED_TTL = 300
#: how long the writer waits before trying an unreachable Redis again (seconds)
RETRY = 1.0
#: where a subscription to a stream that does not exist yet starts: before any entry, none taken
_ORIGIN = (b"0-0", 0)
#: appends events to one stream and renews its expiry, in one call (a pipeline of XADDs costs a reply each)
#: KEYS[1]: the stream; ARGV[1]: MAXLEN (~); ARGV[2]: expiry (s); ARGV[3...]: the events' JSON
_APPEND = """
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return #ARGV - 2
"""
#: events one call of the script appends at most (Redis runs a script alone: keep each one short)
APPEND_MAX = 1_000

# operation kinds, in the writer's queue
_EVENT, _GAP, _END, _START, _BARRIER = range(5)


class RedisSubscription(Feed):
    """One subscriber's view of a topic's stream: a reader task fills the local queue from ``start`` on."""

    def __init__(self, bus: RedisBus, topic: str, key: str, maxsize: int) -> None:
        super().__init__(topic, maxsize)
        self._bus = bus
        self._key = key
        #: where this subscription begins, set by the bus's writer in publishing order: the stream's last
        #: entry id then, and how many entries it had taken in all (its ``entries-added``)
        self.start: asyncio.Future[tuple[bytes, int]] = asyncio.get_running_loop().create_future()
        #: the reader is in a Redis command (it is not cancelled then)
        self._reading = False
        self._reader = asyncio.create_task(self._read(), name=f"bus reader {topic}")

    def close(self) -> None:
        if not self._reading:
            self._reader.cancel()
        # else the reader stops when its XREAD returns (``BLOCK_MS`` at most): redis-py may leave a connection
        # marked in use when a command is cancelled under it
        self._bus._drop(self)
        self._end()

    async def _read(self) -> None:
        client = self._bus.readers
        try:
            last, taken = await self.start
            while not self.closed:
                # XINFO runs once the XREAD has returned (a blocked client's next command waits for it): if the
                # stream has trimmed more entries than came before ``last``'s successor, some never reached us.
                # (Trimming after the read but before the XINFO counts too: a reader that close to the edge
                # is told it fell behind a little early.)
                pipe = client.pipeline(transaction=False)
                pipe.xread({self._key: last}, count=READ_COUNT, block=BLOCK_MS)
                pipe.xinfo_stream(self._key)
                self._reading = True
                try:
                    reply, info = await pipe.execute(raise_on_error=False)
                finally:
                    self._reading = False
                if self.closed:
                    return
                if isinstance(reply, Exception):
                    raise reply
                if isinstance(info, ResponseError):  # no stream (any more)
                    if taken == 0 and not reply:
                        continue  # nothing published since we subscribed
                    return self._stop(overflowed=True)  # it expired under a reader left far behind
                if isinstance(info, Exception):
                    raise info
                if int(info["entries-added"]) - int(info["length"]) > taken:
                    return self._stop(overflowed=True)  # trimmed past us: we were too slow
                for entry_id, fields in reply[0][1] if reply else ():
                    payload = fields.get(b"e")
                    if payload is None:  # an end marker, or a gap marker (events were lost on the way)
                        return self._stop(overflowed=b"gap" in fields)
                    await self._queue.put(json.loads(payload))
                    last = entry_id
                    taken += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.closed:
                log.warning("bus: the reader of %s stopped (%s); its subscriber continues from the archive",
                            self.topic, _reason(exc))
                self._stop(overflowed=True)

    def _stop(self, *, overflowed: bool) -> None:
        """The reader is done: the topic ended, or this subscriber missed events (``overflowed``)."""
        self._bus._drop(self)
        self.overflowed = self.overflowed or overflowed
        self._end()


class RedisBus:
    """Topics map to Redis streams under ``prefix``; events are JSON (``base`` says what that changes)."""

    def __init__(self, client: aioredis.Redis, readers: aioredis.Redis, append_sha: str, *,
                 prefix: str = "small-yi:", stream_maxlen: int = 20_000, maxsize: int = 20_000) -> None:
        #: the writer's connections: apart from the readers', so that many viewers never hold up publishing
        self.client = client
        #: the subscriptions' connections: each reader holds one during its blocking XREAD
        self.readers = readers
        #: the SHA1 of the ``_APPEND`` script, loaded on the server
        self._append = append_sha
        self._prefix = f"{prefix}bus:"
        self._maxlen = stream_maxlen
        self._maxsize = maxsize
        self._subs: dict[str, set[RedisSubscription]] = defaultdict(set)
        #: every reader task not finished, closed subscriptions' too (they end after their XREAD)
        self._readers: set[asyncio.Task[None]] = set()
        #: operations not sent yet, in the order they were made: (kind, stream key, payload or future)
        self._ops: list[tuple[int, str, Any]] = []
        #: streams whose events were dropped: a gap marker precedes their next entry
        self._lost: set[str] = set()
        self._wake = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop(), name="bus writer")
        self._complained = 0.0

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "small-yi:", stream_maxlen: int = 20_000,
                      maxsize: int = 20_000) -> RedisBus:
        """A bus on the Redis at ``url`` (``bus.url``), checked: it answers and is Redis 7 or later."""
        shown = redact_url(url)
        # RESP2: the replies' shapes are the same in every redis-py from 5 on
        options: dict[str, Any] = {"protocol": 2, "socket_connect_timeout": 5, "socket_timeout": BLOCK_MS / 1000 + 10}
        try:
            client = aioredis.Redis.from_url(url, max_connections=4, **options)
            readers = aioredis.Redis.from_url(url, max_connections=READERS_MAX, **options)
        except ValueError as exc:
            raise ConfigError(f"bus.url: {shown} is not a Redis URL ({exc}); e.g. redis://127.0.0.1:6379/0") from None
        try:
            version = str((await client.info("server")).get("redis_version", "0"))
            sha = str(await client.script_load(_APPEND)) if int(version.split(".")[0]) >= 7 else ""
        except (RedisError, OSError) as exc:
            await client.aclose()
            await readers.aclose()
            raise StorageError(f"event bus {shown} cannot be used: {_reason(exc)}; check bus.url in the config "
                               "and that Redis is running") from None
        if int(version.split(".")[0]) < 7:
            await client.aclose()
            await readers.aclose()
            raise ConfigError(f"bus.url: {shown} is Redis {version}; the bus needs Redis 7 or later (its streams "
                              "say what they trimmed, so a viewer left behind knows to catch up)")
        return cls(client, readers, sha, prefix=prefix, stream_maxlen=stream_maxlen, maxsize=maxsize)

    # -- the Bus interface -----------------------------------------------------------------------

    def subscribe(self, topic: str, *, maxsize: int | None = None) -> RedisSubscription:
        key = self._prefix + topic
        sub = RedisSubscription(self, topic, key, maxsize or self._maxsize)
        self._subs[topic].add(sub)
        self._readers.add(sub._reader)
        sub._reader.add_done_callback(self._readers.discard)
        self._ops.append((_START, key, sub.start))
        self._wake.set()
        return sub

    def publish(self, topic: str, event: Event) -> None:
        key = self._prefix + topic
        data = _encode(topic, event)
        if len(self._ops) >= PENDING_MAX:
            self._lost.add(key)
            return
        if key in self._lost:
            self._lost.discard(key)
            self._ops.append((_GAP, key, None))
        self._ops.append((_EVENT, key, data))
        self._wake.set()

    def publish_many(self, topic: str, events: Sequence[Event]) -> None:
        key = self._prefix + topic
        encoded = [(_EVENT, key, _encode(topic, e)) for e in events]
        if len(self._ops) + len(encoded) > PENDING_MAX:
            self._lost.add(key)
            return
        if key in self._lost:
            self._lost.discard(key)
            self._ops.append((_GAP, key, None))
        self._ops.extend(encoded)
        self._wake.set()

    def close_topic(self, topic: str) -> None:
        key = self._prefix + topic
        if key in self._lost:
            self._lost.discard(key)
            self._ops.append((_GAP, key, None))
        self._ops.append((_END, key, None))
        self._wake.set()

    def subscribers(self, topic: str) -> int:
        return len(self._subs.get(topic, ()))

    async def flush(self) -> None:
        """Return once everything published before this call was sent (or given up on)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ops.append((_BARRIER, "", done))
        self._wake.set()
        await done

    async def close(self) -> None:
        """Send what is queued (5 s at most), end this process's subscriptions, close the connections."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), 5)
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.overflowed = True  # cut short: what follows is in the archive
                sub.close()
        tasks = [self._writer, *self._readers]
        for task in tasks:
            task.cancel()  # the connections close with the client just after
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.aclose()
        await self.readers.aclose()

    def _drop(self, sub: RedisSubscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.topic]

    # -- the writer ------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ops:
                ops, self._ops = self._ops, []
                sent = True
                for i in range(0, len(ops), PIPELINE_MAX):
                    sent = await self._send(ops[i:i + PIPELINE_MAX]) and sent
                if not sent:
                    await asyncio.sleep(RETRY)  # Redis is away: what waits (ends) is tried again then

    async def _send(self, ops: list[tuple[int, str, Any]]) -> bool:
        """One pipeline for ``ops``; False if Redis did not take it (its events are lost, gap markers follow,
        its ends are queued again).

        Streams are independent, so each stream's operations are sent together, in their order: its runs of
        events as calls of the append script, starts as ``XINFO STREAM``, gap and end markers as ``XADD``.
        """
        per_key: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        barriers: list[asyncio.Future[None]] = []
        for kind, key, data in ops:
            if kind == _BARRIER:
                barriers.append(data)
            else:
                per_key[key].append((kind, data))
        pipe = self.client.pipeline(transaction=False)
        command = pipe.execute_command
        maxlen, sha = self._maxlen, self._append
        #: per command sent: the start it answers, or the stream it writes to
        meant: list[asyncio.Future[tuple[bytes, int]] | str] = []
        for key, key_ops in per_key.items():
            run: list[str] = []
            for kind, data in key_ops:
                if kind == _EVENT:
                    run.append(data)
                    if len(run) < APPEND_MAX:
                        continue
                if run:
                    command("EVALSHA", sha, 1, key, maxlen, IDLE_TTL, *run)
                    meant.append(key)
                    run = []
                if kind == _START:
                    pipe.xinfo_stream(key)
                    meant.append(data)
                elif kind in (_GAP, _END):
                    command("XADD", key, "MAXLEN", "~", maxlen, "*", "end" if kind == _END else "gap", "1")
                    meant.append(key)
                    if kind == _END:
                        command("EXPIRE", key, CLOSED_TTL)
                        meant.append(key)
            if run:
                command("EVALSHA", sha, 1, key, maxlen, IDLE_TTL, *run)
                meant.append(key)
        try:
            results = await pipe.execute(raise_on_error=False) if meant else []
        except (RedisError, OSError) as exc:
            self._failed(ops, exc)
            return False
        finally:
            for barrier in barriers:
                if not barrier.done():
                    barrier.set_result(None)
        lost: set[str] = set()
        problem: Exception | None = None
        for what, result in zip(meant, results, strict=True):
            if isinstance(what, str):
                if isinstance(result, Exception):
                    lost.add(what)
                    problem = result
            elif not what.done():
                # no stream yet: everything it will hold comes after this subscription's start
                what.set_result(_ORIGIN if isinstance(result, ResponseError)
                                else (result["last-generated-id"], int(result["entries-added"])))
        if lost:
            self._complain(f"Redis refused writes to {len(lost)} topic(s) ({problem})")
            self._lost |= lost
            if isinstance(problem, NoScriptError):  # Redis restarted and forgot the script
                with contextlib.suppress(RedisError, OSError):
                    self._append = str(await self.client.script_load(_APPEND))
        return True

    def _failed(self, ops: list[tuple[int, str, Any]], exc: BaseException) -> None:
        """Redis did not take ``ops``: their events are lost (gap markers follow), starts fail, ends are kept
        for the next write so that subscribers in other processes still end."""
        self._complain(f"Redis is unreachable ({_reason(exc)})")
        ends = []
        for kind, key, data in ops:
            if kind == _START:
                if not data.done():
                    data.set_exception(StorageError(f"the event bus cannot reach Redis ({_reason(exc)})"))
            elif kind in (_EVENT, _GAP):
                self._lost.add(key)
            elif kind == _END:
                ends.append((_END, key, None))
        self._ops[:0] = ends

    def _complain(self, what: str) -> None:
        now = time.monotonic()
        if now - self._complained >= 10:
            self._complained = now
            log.warning("bus: %s; live output of the topics concerned is cut short (viewers catch up from "
                        "the archive)", what)


#: built once: ``json.dumps`` with any option builds an encoder per call, a third of a publish's cost
_JSON = json.JSONEncoder(separators=(",", ":"))


def _encode(topic: str, event: Event) -> str:
    try:
        return _JSON.encode(event)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"bus topic {topic}: the Redis bus sends events as JSON, and this one is not ({exc})") \
            from None


def _reason(exc: BaseException) -> str:
    return str(exc).rstrip(".") or type(exc).__name__
