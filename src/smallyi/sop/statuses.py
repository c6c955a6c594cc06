"""The states a SOP run and its steps go through (an approval step's decision is a
:class:`smallyi.types.ApprovalStatus`, shared with the approvals of the command policy).

The values are what the database stores and the API answers (``api/schemas/sop_runs.py`` declares
these enums); being ``StrEnum`` members, they compare equal to the strings read back from a row.
"""

from __future__ import annotations

import enum


class SopRunStatus(enum.StrEnum):
    """Where a SOP run stands: running until it ends one of the other ways."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: the process running it stopped during a step that cannot be resumed (one on hosts)
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self is not SopRunStatus.RUNNING


class SopStepStatus(enum.StrEnum):
    """Where one step of a run stands. The last six are final."""

    PENDING = "pending"
    RUNNING = "running"
    #: waiting for an approval (its own, or the command policy's)
    WAITING = "waiting"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    TIMEOUT = "timeout"

    @property
    def final(self) -> bool:
        return self not in (SopStepStatus.PENDING, SopStepStatus.RUNNING, SopStepStatus.WAITING)

    @property
    def in_flight(self) -> bool:
        """Started and not over: what a stopped process leaves to resume or interrupt."""
        return self in (SopStepStatus.RUNNING, SopStepStatus.WAITING)

    @property
    def failure(self) -> bool:
        """What the step's ``on_failure`` acts on."""
        return self in (SopStepStatus.FAILED, SopStepStatus.TIMEOUT)


#: statuses a run or step keeps for good (for membership tests on values read from the database)
FINAL_RUN = frozenset(s for s in SopRunStatus if s.final)
FINAL_STEP = frozenset(s for s in SopStepStatus if s.final)
