"""``small-yi run``'s exit status: what went wrong, the worst first (docs/tasks.md#exit-status)."""

from __future__ import annotations

from collections.abc import Mapping

#: a command failed (non-zero exit, a signal), or a host was cancelled or interrupted by someone else
FAILED = 1
#: bad input or config: nothing ran (``common.fail``)
USAGE = 2
#: a command timed out: its outcome is unknown
TIMEOUT = 3
#: a host could not be reached or logged in to: the command never ran there
UNREACHABLE = 4
#: Ctrl-C: the task was cancelled
INTERRUPTED = 130


def exit_status(counts: Mapping[str, int]) -> int:
    """0 if every host succeeded; else the worst of what happened, in this order: :data:`UNREACHABLE`,
    :data:`TIMEOUT`, :data:`FAILED` (cancelled and interrupted hosts count as failed)."""
    bad = {status for status, n in counts.items() if n and status != "success"}
    if "unreachable" in bad:
        return UNREACHABLE
    if "timeout" in bad:
        return TIMEOUT
    return FAILED if bad else 0
