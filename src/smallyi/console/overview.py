"""The dashboard's view of the fleet: each host's latest result, counted by status.

A host's status is the status of its most recent finished result (``never`` if it never ran a task).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from smallyi.storage.db import Database
from smallyi.storage.models import Host, Result
from smallyi.timestamps import iso
from smallyi.types import HostStatus

NEVER = "never"
_UNFINISHED = (HostStatus.PENDING.value, HostStatus.RUNNING.value)


def _latest(names: list[str] | None = None) -> Any:
    q = select(func.max(Result.id).label("id")).where(Result.status.notin_(_UNFINISHED))
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
