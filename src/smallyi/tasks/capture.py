"""Bounded capture of one host stream: the head and the tail are kept, the middle is counted.

Pure and synchronous; memory is at most ``head + tail`` bytes (plus one line) per stream whatever the
host prints.
"""

from __future__ import annotations

from collections import deque


class StreamCapture:
    __slots__ = ("_tail", "_tail_size", "cut_bytes", "cut_lines", "head", "head_left", "tail_max", "total")

    def __init__(self, head_bytes: int, tail_bytes: int) -> None:
        self.head: list[str] = []
        self.head_left = head_bytes
        self.tail_max = tail_bytes
        self._tail: deque[tuple[int, str, int]] = deque()
        self._tail_size = 0
        self.total = 0
        self.cut_bytes = 0
        self.cut_lines = 0

    def add(self, seq: int, text: str, size: int) -> bool:
        """Record a line; True if it belongs to the head (archived now), False if it went to the tail."""
        self.total += size
        if size <= self.head_left and not self._tail:
            self.head.append(text)
            self.head_left -= size
            return True
        self.head_left = 0
        self._tail.append((seq, text, size))
        self._tail_size += size
        while self._tail_size > self.tail_max and self._tail:
            _, _, n = self._tail.popleft()
            self._tail_size -= n
            self.cut_bytes += n
            self.cut_lines += 1
        return False

    def tail(self) -> list[tuple[int, str]]:
        """The kept tail lines with their sequence numbers."""
        return [(seq, text) for seq, text, _ in self._tail]

    def text(self) -> str:
        """Head and tail joined, with a marker line where the middle was cut."""
        parts = list(self.head)
        if self.cut_lines:
            parts.append(f"... [{self.cut_lines} lines, {self.cut_bytes} bytes cut] ...")
        parts.extend(t for _, t, _ in self._tail)
        return "\n".join(parts)
