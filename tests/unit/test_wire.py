"""The wire form of output events: what the live pipeline publishes is what the archive replays.

A viewer that reconnects gets the archived events (``wire.from_row`` and the replay's fast encoder)
where it got live ones (the constructors): the two must be the same JSON, key for key and in order.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from smallyi.cli import ndjson
from smallyi.execution import wire
from smallyi.execution.wire import Archived
from smallyi.tasks.replay import encode_events

AT = "2026-12-07T18:30:00.123Z"

LIVE: list[Archived] = [
    wire.start("web-1", AT, 1),
    wire.line("web-1", "stdout", 'quote " and \\ 中文 \x1b[31m', AT, 2),
    wire.line("web-1", "stderr", "", AT, 3),
    wire.cut(4, "web-1", AT, of="stdout", lines=12, bytes=3400),
    wire.done(5, "web-1", AT, status="failed", exit_code=2, reason="exit code 2", duration=1.25),
    wire.done(6, "db-ü", AT, status="unreachable", exit_code=None, reason="no route", duration=0.0),
]


def _row(ev: Archived) -> tuple[int, str, str, str, datetime]:
    """The ``task_output`` row the pipeline archives for ``ev``."""
    return ev["seq"], ev["host"], ev["stream"], ev["text"], datetime.fromisoformat(ev["at"])


@pytest.mark.parametrize("live", LIVE, ids=lambda e: e["stream"])
def test_archive_replays_each_event_as_published(live: Archived) -> None:
    back = wire.from_row(*_row(live))
    assert list(back.items()) == list(live.items())  # same keys, same order, same values
    assert encode_events([_row(live)], {}) == [json.dumps(live)]  # the replay's fast path, byte for byte


def test_events_keep_the_documented_keys_in_order() -> None:
    head = ["seq", "host", "stream", "text", "at"]
    start, out, _, cut, done, _ = LIVE
    assert list(start) == head and start["text"] == ""
    assert list(out) == head
    assert list(cut) == [*head, *wire.CUT_FIELDS]
    assert json.loads(cut["text"]) == {"of": "stdout", "lines": 12, "bytes": 3400}
    assert list(done) == [*head, *wire.DONE_FIELDS]
    assert wire.end("success", {"success": 1}) == {"seq": None, "stream": "task", "status": "success",
                                                    "counts": {"success": 1}}


def test_a_follow_has_no_sequence_numbers() -> None:
    assert list(wire.line("h", "stdout", "x", AT)) == ["host", "stream", "text", "at"]
    assert list(wire.start("h", AT)) == ["host", "stream", "text", "at"]
    done = wire.follow_done("h", AT, status="cancelled", reason="")
    assert list(done) == ["host", "stream", *wire.FOLLOW_DONE_FIELDS, "at"]
    assert ndjson.event(done) == {"type": "done", "at": AT, "host": "h", "status": "cancelled", "exit_code": None,
                                  "reason": "", "duration": None}


def test_ndjson_reads_a_live_event_and_its_replay_alike() -> None:
    for live in LIVE:
        assert ndjson.event(live) == ndjson.event(wire.from_row(*_row(live)))
