"""Bounded capture of one host stream: the head and the tail are kept, the middle is counted.

Pure and synchronous; memory is at most ``head + tail`` bytes (plus one line) per stream whatever the
host prints. The archive takes the tail while the host runs, too (``take_tail``): the lines kept so far,
and the range of those it took earlier that have since been cut, so that what is archived stays the
head and the current tail.

A line the splitter cut to ``output.max_line_bytes`` (its text ends with the marker) takes the budget
of what it keeps, and the bytes it lost are counted (``line_cut_bytes``): a 20 KB line is kept to
its limit and counted as cut, a 5 MB line keeps its first 16 KiB instead of being dropped whole.

Every line also goes into a running hash (``digest``), so that hosts whose output differs only in the
cut middle are not taken for hosts that printed the same thing.
"""

from __future__ import annotations

import hashlib
from collections import deque


class StreamCapture:
    __slots__ = ("_hash", "_tail", "_tail_size", "cut_bytes", "cut_lines", "dropped", "head", "head_left",
                 "line_cut_bytes", "tail_max", "taken", "total", "withdrawn")

    def __init__(self, head_bytes: int, tail_bytes: int) -> None:
        self.head: list[str] = []
        self.head_left = head_bytes
        self.tail_max = tail_bytes
        #: (seq, text, bytes kept, bytes cut from the line, when it came)
        self._tail: deque[tuple[int, str, int, int, str]] = deque()
        self._tail_size = 0
        self.total = 0
        #: the middle: whole lines dropped between head and tail, and every byte the host sent for them
        self.cut_bytes = 0
        self.cut_lines = 0
        #: bytes cut from long lines that are kept (in the head or the tail)
        self.line_cut_bytes = 0
        #: the highest sequence number of a tail line handed to the archive (take_tail)
        self.taken = 0
        #: the highest sequence number cut from the tail, and the highest whose removal was handed out
        #: (-1 until the first tail line: then the seq before it, so a removal never reaches the head)
        self.dropped = 0
        self.withdrawn = -1
        self._hash = hashlib.blake2b(digest_size=16)

    @property
    def cut_total(self) -> int:
        """Every byte the host sent that the archive does not hold: the middle and the ends of long lines."""
        return self.cut_bytes + self.line_cut_bytes

    def add(self, seq: int, text: str, size: int, cut: int = 0, at: str = "") -> bool:
        """Record a line of ``size`` bytes of which ``cut`` were cut by the splitter, that came ``at`` (kept
        with a tail line, for the archive); True if it belongs to the head (archived now), False if it went
        to the tail."""
        self.total += size
        self._hash.update(text.encode("utf-8", "surrogatepass") + b"\n")
        kept = size - cut
        self.line_cut_bytes += cut
        if kept <= self.head_left and not self._tail:
            self.head.append(text)
            self.head_left -= kept
            return True
        self.head_left = 0
        if self.withdrawn < 0:
            self.withdrawn = seq - 1
        self._tail.append((seq, text, kept, cut, at))
        self._tail_size += kept
        while self._tail_size > self.tail_max and self._tail:
            self.dropped, _, n, lost, _ = self._tail.popleft()
            self._tail_size -= n
            self.cut_bytes += n + lost
            self.line_cut_bytes -= lost
            self.cut_lines += 1
        return False

    def tail(self) -> list[tuple[int, str]]:
        """The kept tail lines with their sequence numbers."""
        return [(seq, text) for seq, text, _, _, _ in self._tail]

    def untaken(self) -> list[tuple[int, str, str]]:
        """The kept tail lines the archive has not taken yet, in order: (seq, text, when it came)."""
        out = []
        for seq, text, _, _, at in reversed(self._tail):
            if seq <= self.taken:
                break
            out.append((seq, text, at))
        out.reverse()
        return out

    def take_tail(self) -> tuple[list[tuple[int, str, str]], tuple[int, int] | None]:
        """Hand the archive what changed in the tail: new lines, and a range ``(after, upto]`` to remove.

        The range covers the lines taken earlier that have been cut since; lines cut before they were
        taken were never archived and need nothing.
        """
        gone = None
        upto = min(self.dropped, self.taken)
        if upto > self.withdrawn:
            gone = (self.withdrawn, upto)
        self.withdrawn = max(self.withdrawn, self.dropped)
        new = self.untaken()
        if new:
            self.taken = new[-1][0]
        return new, gone

    def digest(self) -> bytes:
        """A hash of every line recorded, the cut ones included."""
        return self._hash.digest()

    def text(self) -> str:
        """Head and tail joined, with a marker line where the middle was cut."""
        parts = list(self.head)
        if self.cut_lines:
            parts.append(f"... [{self.cut_lines} lines, {self.cut_bytes} bytes cut] ...")
        parts.extend(t for _, t, _, _, _ in self._tail)
        return "\n".join(parts)
