"""How small-yi writes a point in time: ISO 8601 in UTC with ``Z``, one style for machines, one for people.

Every timestamp the API returns and the CLI prints as JSON is :func:`iso`, with milliseconds whatever
the value (``2026-12-07T18:30:00.123Z``, ``2026-12-07T18:30:00.000Z``: one length, sortable as text);
the CLI's tables and lines show :func:`iso_seconds` (``2026-12-07T18:30:00Z``). Neither ever carries
an offset other than UTC, a space instead of the ``T``, or a naive time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def _utc(value: datetime) -> datetime:
    """A naive value is UTC already (the database stores UTC); an aware one is converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: datetime | None) -> str | None: ...
def iso(value: datetime | None) -> str | None:
    """``2026-12-07T18:30:00.123Z`` (milliseconds, truncated), or None (for None)."""
    if value is None:
        return None
    t = _utc(value)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def iso_seconds(value: datetime | None) -> str | None:
    """``2026-12-07T18:30:00Z`` (seconds, truncated), or None: what a person reads in a table."""
    if value is None:
        return None
    return f"{_utc(value):%Y-%m-%dT%H:%M:%S}Z"


def from_unix(seconds: float) -> str:
    """:func:`iso` of a Unix time (``time.time()``)."""
    return iso(datetime.fromtimestamp(seconds, UTC)) or ""


class Stamper:
    """:func:`from_unix` for a stream of events, each millisecond formatted once (the output pipeline
    stamps every line a host prints: in a burst most share their millisecond)."""

    __slots__ = ("_ms", "_text")

    def __init__(self) -> None:
        self._ms = -1
        self._text = ""

    def __call__(self, seconds: float) -> str:
        ms = int(seconds * 1000)
        if ms != self._ms:
            t = datetime.fromtimestamp(ms // 1000, UTC)
            self._ms, self._text = ms, f"{t:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"
        return self._text


def parse(text: str) -> datetime:
    """An ISO 8601 text (``Z``, an offset, or none: UTC) as an aware UTC datetime; ValueError if it is not one."""
    return _utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


def shown(value: object) -> str:
    """A timestamp as a person reads it (:func:`iso_seconds`), from a datetime or an ISO text; anything
    else (a missing value, a text that is not a time) as it is."""
    if isinstance(value, datetime):
        return iso_seconds(value) or ""
    if isinstance(value, str):
        try:
            return iso_seconds(parse(value)) or ""
        except ValueError:
            return value
    return "" if value is None else str(value)
