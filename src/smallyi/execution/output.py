"""Bytes from a host's stream → one HostOutput event per line, in bounded memory.

A connector calls :meth:`LineSplitter.feed` with each chunk as it arrives and :meth:`LineSplitter.flush`
at the end. Only the current partial line is kept, and never more than ``max_line_bytes`` of it:
a host printing 100 MB, or one endless line, costs the same memory as one printing ``uptime``.
A line cut there says so in its text (:func:`line_cut_marker`) and counts what it lost (``cut``), so
whoever shows or archives it never passes a cut line off as whole.
"""

from __future__ import annotations

from smallyi.execution.events import Emit, Event, HostOutput, Stream


def _drop(_event: Event) -> None:
    """Emit target once a host is done: late bytes from a closing channel go nowhere."""


def line_cut_marker(cut: int) -> str:
    """What ends the text of a line cut to ``output.max_line_bytes``: how many bytes of it are not there."""
    return f" ... [{cut} bytes cut from this line]"


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
    text was cut (``cut`` then counts the bytes of the line left out, and the text ends with
    :func:`line_cut_marker`); text is UTF-8 with invalid bytes replaced, so binary output never raises.
    """

    __slots__ = ("_buf", "_extra", "_host", "_last", "_max", "_stream", "emit", "lines")

    def __init__(self, host: str, stream: Stream, emit: Emit, max_line_bytes: int) -> None:
        self._host = host
        self._stream: Stream = stream
        self.emit = emit
        self._max = max_line_bytes
        #: the partial line so far (at most ``max + 1`` bytes: one more to tell a trailing ``\r``)
        self._buf = b""
        #: bytes of the partial line dropped past ``_buf`` (non-zero means it will be cut)
        self._extra = 0
        #: the last byte of the partial line seen so far (a dropped ``\r`` before ``\n`` is no cut byte)
        self._last = b""
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
                    cut = len(line) - limit
                    emit(HostOutput(host, stream, line[:limit] + line_cut_marker(cut), size, cut))
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
                    kept = _cut(part, limit)
                    cut = len(part) - len(kept)
                    emit(HostOutput(host, stream, kept.decode("utf-8", "replace") + line_cut_marker(cut), size, cut))
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
        if chunk:
            self._last = chunk[-1:]
        room = self._max + 1 - len(self._buf)
        if len(chunk) <= room:
            self._buf += chunk
        else:
            if room > 0:
                self._buf += chunk[:room]
            self._extra += len(chunk) - max(room, 0)

    def _line(self, part: bytes, extra: int, newline: int) -> None:
        size = len(part) + extra + newline
        last, self._last = self._last, b""
        if not extra and part.endswith(b"\r"):
            part = part[:-1]
        self.lines += 1
        if not extra and len(part) <= self._max:
            self.emit(HostOutput(self._host, self._stream, part.decode("utf-8", "replace"), size))
            return
        kept = _cut(part, self._max)
        # what the host sent for the line's text, less what is kept (a CR ending it is part of its end)
        cut = len(part) + extra - (1 if extra and last == b"\r" else 0) - len(kept)
        self.emit(HostOutput(self._host, self._stream, kept.decode("utf-8", "replace") + line_cut_marker(cut),
                             size, cut))
