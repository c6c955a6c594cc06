"""What the engine tells its caller, in order, per host: HostStarted, HostOutput*, HostDone.

Events are plain slotted dataclasses delivered through a synchronous callback (``Emit``), so the
hot path allocates one small object per line and never awaits. The caller (the task pipeline)
numbers them, bounds them and fans them out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from smallyi.types import HostStatus

Stream = Literal["stdout", "stderr"]


@dataclass(slots=True)
class HostStarted:
    host: str
    at: float  # time.time()


@dataclass(slots=True)
class HostOutput:
    host: str
    stream: Stream
    #: one line without its newline, decoded as UTF-8 with invalid bytes replaced; a line longer than
    #: ``output.max_line_bytes`` is cut to it and ends with a marker of the bytes cut (``cut``)
    text: str
    #: how many bytes the host sent for this line (before cutting), newline included
    size: int
    #: how many bytes of the line are not in ``text`` (0: the whole line is)
    cut: int = 0

    @property
    def truncated(self) -> bool:
        return self.cut > 0


@dataclass(slots=True)
class HostDone:
    host: str
    status: HostStatus
    exit_code: int | None
    #: why, for anything but success: "exit status 2", "host key changed", "connection refused", ...
    reason: str
    started: float
    finished: float


Event = HostStarted | HostOutput | HostDone
Emit = Callable[[Event], None]
