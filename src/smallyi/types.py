"""Small shared value types: statuses of hosts, tasks and approvals, and how a task's status follows from its
hosts'."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class HostStatus(enum.StrEnum):
    """Where one host of a task stands. The last six are final."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self not in (HostStatus.PENDING, HostStatus.RUNNING)


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self not in (TaskStatus.QUEUED, TaskStatus.RUNNING)


class ApprovalStatus(enum.StrEnum):
    """A request for approval (a command the policy holds, or a SOP's approval step): pending until someone
    decides it, it expires, or it is cancelled (its run was, or the person behind it may no longer act)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


def task_status_from_hosts(statuses: Iterable[HostStatus]) -> TaskStatus:
    """A finished task's status: success only if every host succeeded.

    Interrupted wins over cancelled, cancelled over failed, so that the most telling reason shows.
    """
    seen = set(statuses)
    if not seen or seen == {HostStatus.SUCCESS}:
        return TaskStatus.SUCCESS
    if HostStatus.INTERRUPTED in seen:
        return TaskStatus.INTERRUPTED
    if HostStatus.CANCELLED in seen:
        return TaskStatus.CANCELLED
    return TaskStatus.FAILED
