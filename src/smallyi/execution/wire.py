"""The wire form of a host's output events: the one shape task viewers, the bus and the CLI see.

A task's pipeline numbers each engine event and publishes it in this form (the WebSocket sends it,
``-o ndjson`` and the terminal printer read it, SOP steps forward it); the archive keeps ``seq``,
``host``, ``stream``, ``text`` and ``at`` of each and :func:`from_row` gives it back the same; a log
follow sends the same events without ``seq`` (it is not archived). Every event is built here, by one
constructor per kind, so that producers cannot drift apart: the JSON of an event is its keys in the
order built here (``{"seq", "host", "stream", "text", "at", ...}``), and viewers and scripts read that
JSON. A ``cut`` or ``done`` event carries its details twice: as keys, and as the JSON ``text`` the
archive keeps (replay reads them back from it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict, cast

from smallyi.timestamps import iso

#: the keys of a ``cut`` event after ``at``, in order (also its archived ``text``)
CUT_FIELDS = ("of", "lines", "bytes")
#: the keys of a task's ``done`` event after ``at``, in order (also its archived ``text``)
DONE_FIELDS = ("status", "exit_code", "reason", "duration")
#: what a log follow's ``done`` event keeps of them (a follow has no exit code or duration)
FOLLOW_DONE_FIELDS = ("status", "reason")


class Line(TypedDict):
    """One line a host printed; ``seq`` for a task's (not for a log follow's)."""

    seq: NotRequired[int]
    host: str
    stream: Literal["stdout", "stderr"]
    text: str
    at: str


class Start(TypedDict):
    """A host began."""

    seq: NotRequired[int]
    host: str
    stream: Literal["start"]
    text: Literal[""]
    at: str


class Cut(TypedDict):
    """Lines of one stream the archive did not keep (the middle its head and tail left out)."""

    seq: int
    host: str
    stream: Literal["cut"]
    text: str
    at: str
    of: Literal["stdout", "stderr"]
    lines: int
    bytes: int


class Done(TypedDict):
    """A task's host ended."""

    seq: int
    host: str
    stream: Literal["done"]
    text: str
    at: str
    status: str
    exit_code: int | None
    reason: str
    duration: float


class FollowDone(TypedDict):
    """A log follow's host ended (no ``seq`` or ``text``: nothing is archived)."""

    host: str
    stream: Literal["done"]
    status: str
    reason: str
    at: str


class Note(TypedDict):
    """small-yi's own line in a log follow (lines it dropped for a slow client): no host, no time."""

    host: Literal[""]
    stream: Literal["stderr"]
    text: str


class End(TypedDict):
    """The bus's last event of a task: it ended (``seq`` None: no viewer shows it as output)."""

    seq: None
    stream: Literal["task"]
    status: str
    counts: dict[str, int]


#: a task's host output event: what its pipeline publishes and its archive keeps
Archived = Line | Start | Cut | Done
#: a host output event as viewers get it (a task's, or a log follow's)
Wire = Line | Start | Cut | Done | FollowDone | Note


def line(host: str, stream: Literal["stdout", "stderr"], text: str, at: str, seq: int | None = None) -> Line:
    if seq is None:
        return {"host": host, "stream": stream, "text": text, "at": at}
    return {"seq": seq, "host": host, "stream": stream, "text": text, "at": at}


def start(host: str, at: str, seq: int | None = None) -> Start:
    if seq is None:
        return {"host": host, "stream": "start", "text": "", "at": at}
    return {"seq": seq, "host": host, "stream": "start", "text": "", "at": at}


def cut(seq: int, host: str, at: str, *, of: Literal["stdout", "stderr"], lines: int, bytes: int) -> Cut:
    text = json.dumps({"of": of, "lines": lines, "bytes": bytes})
    return {"seq": seq, "host": host, "stream": "cut", "text": text, "at": at, "of": of, "lines": lines, "bytes": bytes}


def done(seq: int, host: str, at: str, *, status: str, exit_code: int | None, reason: str, duration: float) -> Done:
    text = json.dumps({"status": status, "exit_code": exit_code, "reason": reason, "duration": duration})
    return {"seq": seq, "host": host, "stream": "done", "text": text, "at": at, "status": status,
            "exit_code": exit_code, "reason": reason, "duration": duration}


def follow_done(host: str, at: str, *, status: str, reason: str) -> FollowDone:
    return {"host": host, "stream": "done", "status": status, "reason": reason, "at": at}


def note(text: str) -> Note:
    return {"host": "", "stream": "stderr", "text": text}


def end(status: str, counts: dict[str, int]) -> End:
    return {"seq": None, "stream": "task", "status": status, "counts": counts}


def from_row(seq: int, host: str, stream: str, data: str, at: datetime | None) -> Archived:
    """An archived event (a ``task_output`` row) back in its wire form: what the pipeline published."""
    event: dict[str, Any] = {"seq": seq, "host": host, "stream": stream, "text": data, "at": iso(at)}
    if stream in ("done", "cut"):
        event.update(json.loads(data))
    return cast(Archived, event)
