"""Who runs a long-lived thing (a task, a sync, a terminal, an SOP run), and whether it still does.

A runner id is ``<kind>:<hostname>:<pid>``. Start-up recovery asks ``process_state`` about runners
that left work unfinished; each caller decides what a runner on another machine means for it.
"""

from __future__ import annotations

import enum
import os
import socket


def runner_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


class ProcessState(enum.Enum):
    ALIVE = "alive"
    GONE = "gone"
    #: another machine's process, or an id this process cannot read: it cannot be checked from here
    ELSEWHERE = "elsewhere"


def runner_kind(runner: str) -> str:
    return runner.partition(":")[0]


def process_state(runner: str) -> ProcessState:
    """Whether the process behind ``runner`` is still alive, when it ran on this machine."""
    _kind, _, rest = runner.partition(":")
    host, _, pid = rest.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return ProcessState.ELSEWHERE
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return ProcessState.GONE
    except PermissionError:
        return ProcessState.ALIVE
    return ProcessState.ALIVE
