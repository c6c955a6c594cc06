"""Recording a terminal session as asciicast v2: a JSON header line, then one JSON array per event.

Pure: the recorder takes bytes and times and hands back text lines; where they are stored is the
caller's business. Output is decoded incrementally (a UTF-8 character split across two reads stays
whole) with replacement characters for invalid bytes. A recording stops growing at ``limit`` bytes
and says so in a marker event, so a ``cat`` of a huge file cannot fill the database.
"""

from __future__ import annotations

import codecs
import json
from datetime import datetime
from typing import Any

#: the most a recording keeps (the session goes on; the rest is counted, not kept)
DEFAULT_LIMIT = 32 * 1024 * 1024


class AsciicastRecorder:
    """Turns a session's output and size changes into asciicast v2 lines (``.drain()`` takes them)."""

    def __init__(
        self, *, cols: int, rows: int, started: datetime, title: str = "",
        env: dict[str, str] | None = None, limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.started = started
        self.limit = limit
        self.size = 0
        self.truncated = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines: list[str] = []
        header: dict[str, Any] = {
            "version": 2, "width": cols, "height": rows, "timestamp": int(started.timestamp()),
            "env": env or {"TERM": "xterm-256color"},
        }
        if title:
            header["title"] = title
        self._add(json.dumps(header, ensure_ascii=False), force=True)

    def _elapsed(self, now: datetime) -> float:
        return round(max((now - self.started).total_seconds(), 0.0), 6)

    def _add(self, line: str, *, force: bool = False) -> None:
        if self.truncated and not force:
            return  # once cut, nothing more: a short line fitting the room left would look like the end
        cost = len(line.encode()) + 1
        if not force and self.size + cost > self.limit:
            if not self.truncated:
                self.truncated = True
                note = json.dumps([0.0, "m", "recording limit reached; the rest of the session was not kept"])
                self._lines.append(note)
                self.size += len(note) + 1
            return
        self._lines.append(line)
        self.size += cost

    def output(self, data: bytes, now: datetime) -> str:
        """Record what the host printed; returns it decoded (what the browser should be sent)."""
        text = self._decoder.decode(data)
        if text:
            self._add(json.dumps([self._elapsed(now), "o", text], ensure_ascii=False))
        return text

    def resize(self, cols: int, rows: int, now: datetime) -> None:
        self._add(json.dumps([self._elapsed(now), "r", f"{cols}x{rows}"]))

    def marker(self, label: str, now: datetime) -> None:
        self._add(json.dumps([self._elapsed(now), "m", label], ensure_ascii=False))

    def finish(self, now: datetime) -> None:
        rest = self._decoder.decode(b"", final=True)
        if rest:
            self._add(json.dumps([self._elapsed(now), "o", rest], ensure_ascii=False))

    def drain(self) -> list[str]:
        """The lines recorded since the last call."""
        lines, self._lines = self._lines, []
        return lines

    @property
    def pending(self) -> int:
        return len(self._lines)
