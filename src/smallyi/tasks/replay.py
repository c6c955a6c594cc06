"""A task's archived output as ready-to-send stream frames, for viewers catching up.

A viewer far behind a big task (a reload, a reconnect, a subscriber dropped from the live feed) reads
the archive in pages of :data:`PAGE_ROWS` events (keyset on ``seq``, one round trip each, the next page
read while this one is sent), with SQLAlchemy Core rows instead of ORM ones, and gets frames of up
to :data:`FRAME_BYTES` whose JSON is written straight from the rows: an output line costs one C call
to escape its text (and its time, formatted once per distinct value), not a dict and a pass of the JSON
encoder. The frames are the stream's
``{"type": "events", "events": [...]}`` messages, event for event what ``execution.wire.from_row`` gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from json.encoder import encode_basestring_ascii

from sqlalchemy import select

from smallyi.auth.rbac import HostScope
from smallyi.execution import wire
from smallyi.storage.db import Database
from smallyi.storage.models import TaskOutput
from smallyi.tasks.queries import host_in_scope
from smallyi.timestamps import iso

#: archived events read per query
PAGE_ROWS = 20_000
#: a frame is sent once its JSON reaches this size (a frame holds whole events, so it may exceed it by one)
FRAME_BYTES = 1024 * 1024

_HEAD = '{"type": "events", "events": ['
_TAIL = "]}"
_PLAIN = ("stdout", "stderr")

Row = tuple[int, str, str, str, datetime | None]


async def _page(db: Database, task_id: int, after: int, scope: HostScope, limit: int) -> Sequence[Row]:
    t = TaskOutput.__table__.c
    q = (select(t.seq, t.host_name, t.stream, t.data, t.at)
         .where(t.task_id == task_id, t.seq > after, host_in_scope(t.host_name, scope))
         .order_by(t.seq).limit(limit))
    async with db.engine.connect() as conn:
        return (await conn.execute(q)).all()


def encode_events(rows: Sequence[Row], hosts: dict[str, str]) -> list[str]:
    """Each row as the JSON text of its wire event (``hosts`` caches escaped host names)."""
    out = []
    stamps: dict[datetime | None, str] = {}
    for seq, host, stream, data, at in rows:
        if stream in _PLAIN:
            name = hosts.get(host)
            if name is None:
                name = hosts[host] = encode_basestring_ascii(host)
            when = stamps.get(at)
            if when is None:
                when = stamps[at] = json.dumps(iso(at))
            out.append(f'{{"seq": {seq}, "host": {name}, "stream": "{stream}", '
                       f'"text": {encode_basestring_ascii(data)}, "at": {when}}}')
        else:
            out.append(json.dumps(wire.from_row(seq, host, stream, data, at)))
    return out


async def archived_frames(
    db: Database, task_id: int, after: int, *, scope: HostScope,
    page_rows: int = PAGE_ROWS, frame_bytes: int = FRAME_BYTES,
) -> AsyncIterator[tuple[str, int]]:
    """(frame text, its last ``seq``) for every archived event after ``after`` in ``scope``, in order."""
    hosts: dict[str, str] = {}
    nxt: asyncio.Task[Sequence[Row]] | None = asyncio.ensure_future(_page(db, task_id, after, scope, page_rows))
    try:
        while nxt is not None:
            rows = await nxt
            nxt = None
            if not rows:
                return
            # read ahead while this page is encoded and sent; the archive may have grown meanwhile, so
            # stop only at an empty page
            nxt = asyncio.ensure_future(_page(db, task_id, rows[-1][0], scope, page_rows))
            parts: list[str] = []
            size = 0
            for row, text in zip(rows, encode_events(rows, hosts), strict=True):
                parts.append(text)
                size += len(text) + 1
                if size >= frame_bytes:
                    yield _HEAD + ",".join(parts) + _TAIL, row[0]
                    parts, size = [], 0
            if parts:
                yield _HEAD + ",".join(parts) + _TAIL, rows[-1][0]
    finally:
        if nxt is not None:
            nxt.cancel()
            with contextlib.suppress(BaseException):
                await nxt
