"""Bytes from a host's stream → one HostOutput event per line, in bounded memory.

A connector calls :meth:`LineSplitter.feed` with each chunk as it arrives and :meth:`LineSplitter.flush`
at the end. Only the current partial line is kept, and never more than ``max_line_bytes`` of it:
a host printing 100 MB, or one endless line, costs the same memory as one printing ``uptime``.
"""

from __future__ import annotations

from smallyi.execution.events import Emit, Event, HostOutput, Stream


def _drop(_event: Event) -> None:
    """Emit target once a host is done: late bytes from a closing channel go nowhere."""


def _cut(line: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of ``line`` (longer than that), backed off so no UTF-8 character is split."""
    end = limit
    while end > 0 and end > limit - 4:
        if (line[end] & 0xC0) != 0x80:
            return line[:end]
        end -= 1
    return line[:limit]


class LineSplitter:
    """Split one stream into lines (``\\n`` or ``\\r\\n``), decode leniently, cut long lines.

    ``size`` on each event counts what the host sent for that line, newline included, even when the
    text was cut; text is UTF-8 with invalid bytes replaced, so binary output never raises.
    """

    __slots__ = ("_buf", "_extra", "_host", "_max", "_stream", "emit", "lines")

    def __init__(self, host: str, stream: Stream, emit: Emit, max_line_bytes: int) -> None:
        self._host = host
        self._stream: Stream = stream
        self.emit = emit
        self._max = max_line_bytes
        #: the partial line so far (at most ``max + 1`` bytes: one more to tell a trailing ``\r``)
        self._buf = b""
        #: bytes of the partial line dropped past ``_buf`` (non-zero means it will be cut)
        self._extra = 0
        self.lines = 0

    def feed(self, data: bytes) -> None:
        """Take one chunk; emit every line it completes, keep the rest (bounded)."""
        nl = data.find(b"\n")
        if nl < 0:
            self._hold(data)
            return
        if self._buf or self._extra:
            self._hold(data[:nl])
            self._line(self._buf, self._extra, 1)
            self._buf = b""
            self._extra = 0
            data = data[nl + 1 :]
            nl = data.find(b"\n")
            if nl < 0:
                self._hold(data)
                return
        end = data.rfind(b"\n")
        body, rest = data[:end], data[end + 1 :]
        host, stream, emit, limit = self._host, self._stream, self.emit, self._max
        if body.isascii():
            # the common case, one decode per chunk: ASCII text, where a character is a byte
            lines = body.decode("ascii").split("\n")
            cr = b"\r" in body
            for line in lines:
                size = len(line) + 1
                if cr and line.endswith("\r"):
                    line = line[:-1]
                if len(line) > limit:
                    emit(HostOutput(host, stream, line[:limit], size, True))
                else:
                    emit(HostOutput(host, stream, line, size))
            self.lines += len(lines)
        else:
            parts = body.split(b"\n")
            for part in parts:
                size = len(part) + 1
                if part.endswith(b"\r"):
                    part = part[:-1]
                if len(part) > limit:
                    emit(HostOutput(host, stream, _cut(part, limit).decode("utf-8", "replace"), size, True))
                else:
                    emit(HostOutput(host, stream, part.decode("utf-8", "replace"), size))
            self.lines += len(parts)
        if rest:
            self._hold(rest)

    def flush(self) -> None:
        """Emit the unterminated last line, if any (the stream ended)."""
        if self._buf or self._extra:
            self._line(self._buf, self._extra, 0)
            self._buf = b""
            self._extra = 0

    def close(self) -> None:
        """Flush, then ignore anything fed later."""
        self.flush()
        self.emit = _drop

    def _hold(self, chunk: bytes) -> None:
        room = self._max + 1 - len(self._buf)
        if len(chunk) <= room:
            self._buf += chunk
        else:
            if room > 0:
                self._buf += chunk[:room]
            self._extra += len(chunk) - max(room, 0)

    def _line(self, part: bytes, extra: int, newline: int) -> None:
        size = len(part) + extra + newline
        if not extra and part.endswith(b"\r"):
            part = part[:-1]
        truncated = bool(extra) or len(part) > self._max
        if truncated:
            part = _cut(part, self._max)
        self.lines += 1
        self.emit(HostOutput(self._host, self._stream, part.decode("utf-8", "replace"), size, truncated))
