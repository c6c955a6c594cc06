"""How a host's run ends, in the words the events carry: status and reason."""

from __future__ import annotations

import logging

from smallyi.execution.connectors.base import Exit
from smallyi.execution.events import Emit, Event
from smallyi.types import HostStatus

log = logging.getLogger(__name__)


def outcome(result: Exit) -> tuple[HostStatus, str]:
    """Status and reason from how a command ended: "exit status 2", "killed by signal TERM", ..."""
    if result.signal is not None:
        status, reason = HostStatus.FAILED, f"killed by signal {result.signal}"
    elif result.code == 0:
        status, reason = HostStatus.SUCCESS, ""
    elif result.code is None:
        status, reason = HostStatus.FAILED, "no exit status"
    else:
        status, reason = HostStatus.FAILED, f"exit status {result.code}"
    if result.note:
        reason = f"{reason}; {result.note}" if reason else result.note
    return status, reason


def safe_emit(emit: Emit, event: Event) -> None:
    """Emit an event that must be delivered even if the caller's emit failed before (logged, not raised)."""
    try:
        emit(event)
    except Exception:
        log.exception("emit(%s) failed", type(event).__name__)
