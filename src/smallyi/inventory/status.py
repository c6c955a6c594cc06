"""A host's latest status: the status of its most recent finished result, ``never`` if none.

For filtering the host list in the database (``GET /api/v1/hosts?status=failed``): one correlated
subquery per host, answered by the ``(host_name, id)`` index of ``results`` as a single backward
index step, so thousands of hosts over a million results cost thousands of index lookups, never a
scan of the results. For the dashboard: hosts counted by their latest status, and the latest status,
task and time of a page of hosts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, func, select

from smallyi.errors import InputError
from smallyi.storage.db import Database
from smallyi.storage.models import Host, Result
from smallyi.timestamps import iso
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


def _latest(names: list[str] | None = None) -> Any:
    q = select(func.max(Result.id).label("id")).where(Result.status.notin_(UNFINISHED))
    if names is not None:
        q = q.where(Result.host_name.in_(names))
    latest = q.group_by(Result.host_name).subquery()
    return select(Result.host_name, Result.status, Result.task_id, Result.finished_at).join(
        latest, Result.id == latest.c.id
    )


async def host_statuses(db: Database, names: list[str]) -> dict[str, dict[str, Any]]:
    """For each named host: its latest finished result's status, task and time (``never`` if none)."""
    out: dict[str, dict[str, Any]] = {n: {"status": NEVER, "task_id": None, "at": None} for n in names}
    if not names:
        return out
    async with db.session() as s:
        for i in range(0, len(names), 500):
            for host, status, task_id, at in (await s.execute(_latest(names[i:i + 500]))).all():
                out[host] = {"status": status, "task_id": task_id, "at": iso(at)}
    return out


async def hosts_by_status(db: Database) -> dict[str, Any]:
    """Enabled hosts counted by their latest status, plus the total and the disabled count."""
    async with db.session() as s:
        hosts = {name: enabled for name, enabled in (await s.execute(select(Host.name, Host.enabled))).all()}
        latest = {host: status for host, status, _t, _a in (await s.execute(_latest())).all()}
    counts: dict[str, int] = {}
    disabled = 0
    for name, enabled in hosts.items():
        if not enabled:
            disabled += 1
            continue
        status = latest.get(name, NEVER)
        counts[status] = counts.get(status, 0) + 1
    return {"total": len(hosts), "disabled": disabled, "by_status": counts}
