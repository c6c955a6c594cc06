"""A host's latest status, as SQL: the status of its most recent finished result, ``never`` if none.

For filtering the host list in the database (``GET /api/v1/hosts?status=failed``): one correlated
subquery per host, answered by the ``(host_name, id)`` index of ``results`` as a single backward
index step, so thousands of hosts over a million results cost thousands of index lookups, never a
scan of the results.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, select

from smallyi.errors import InputError
from smallyi.storage.models import Host, Result
from smallyi.types import HostStatus

NEVER = "never"
UNFINISHED = (HostStatus.PENDING.value, HostStatus.RUNNING.value)
#: what ``status`` may be: every final host status, and ``never``
STATUSES = (*(s.value for s in HostStatus if s.final), NEVER)


def check_status(status: str) -> str:
    """``status`` if it is one of :data:`STATUSES`; InputError naming the field otherwise."""
    if status not in STATUSES:
        raise InputError(f"status {status!r} is not a host status; use one of {', '.join(STATUSES)}",
                         field="status")
    return status


def _finished_of_host() -> ColumnElement[bool]:
    return (Result.host_name == Host.name) & Result.status.notin_(UNFINISHED)


def latest_status_is(status: str) -> ColumnElement[bool]:
    """A condition on ``hosts`` rows: the host's latest finished result has ``status`` (or none: ``never``)."""
    check_status(status)
    if status == NEVER:
        return ~exists(select(Result.id).where(_finished_of_host()))
    latest = (
        select(Result.status).where(_finished_of_host())
        .order_by(Result.id.desc()).limit(1)
        .correlate(Host).scalar_subquery()
    )
    return latest == status
