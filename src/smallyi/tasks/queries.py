"""Searching the archive: tasks and per-host results, filtered and paged, newest first.

Every read takes a :class:`~smallyi.auth.rbac.HostScope` (``Access.scope(Perm.TASKS_READ)``) and
applies it in SQL: results and output lines only of hosts now in one of the scope's groups; a task
only if at least one of its hosts is. ``EVERY_HOST`` for callers with full rights (the local CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select, true

from smallyi.auth.rbac import HostScope
from smallyi.durations import parse_duration
from smallyi.errors import InputError, NotFound
from smallyi.storage.db import Database
from smallyi.storage.models import Group, Host, HostGroup, Result, Task
from smallyi.timestamps import iso
from smallyi.types import HostStatus, TaskStatus


def parse_time(text: str, *, field: str, now: datetime | None = None) -> datetime:
    """A point in time from ``1h`` (that long ago), an ISO 8601 timestamp, or Unix seconds."""
    now = now or datetime.now(UTC)
    t = text.strip()
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    except ValueError:
        pass
    if t.replace(".", "", 1).isdigit() and len(t) >= 9:
        return datetime.fromtimestamp(float(t), UTC)
    try:
        return now - timedelta(seconds=parse_duration(t, field=field))
    except InputError:
        raise InputError(
            f"{field}: {text!r} is neither a duration ago (1h, 30m) nor a timestamp (2026-11-20T10:00:00Z)",
            field=field,
        ) from None


def parse_window(since: str | None, until: str | None, *, flag: str = "") -> tuple[datetime | None, datetime | None]:
    """A search's ``since`` and ``until`` as ``parse_time`` reads them, None where not given; ``flag`` goes before
    their names in messages (``--`` on the command line)."""
    return (parse_time(since, field=f"{flag}since") if since else None,
            parse_time(until, field=f"{flag}until") if until else None)


def _status(value: str, allowed: type[HostStatus] | type[TaskStatus], field: str) -> str:
    try:
        return allowed(value).value
    except ValueError:
        names = ", ".join(s.value for s in allowed)
        raise InputError(f"{field}: unknown status {value!r}; one of {names}", field=field) from None


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    command: str | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class ResultFilter:
    host: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    task: int | None = None


def task_dict(t: Task, *, queue_position: int | None = None) -> dict[str, Any]:
    return {
        "id": t.id, "kind": t.kind, "command": t.command, "target": t.target, "status": t.status,
        "reason": t.reason, "created_by": t.created_by, "created_at": iso(t.created_at), "started_at": iso(t.started_at),
        "finished_at": iso(t.finished_at), "timeout": t.timeout, "concurrency": t.concurrency, "rate": t.rate,
        "host_count": t.host_count, "counts": t.counts, "last_seq": t.last_seq,
        "duration": (t.finished_at - t.started_at).total_seconds() if t.finished_at and t.started_at else None,
        "queue_position": queue_position, "notify": t.notify or None,
    }


def result_dict(r: Result) -> dict[str, Any]:
    return {
        "id": r.id, "task_id": r.task_id, "host": r.host_name, "address": r.address, "status": r.status,
        "reason": r.reason, "exit_code": r.exit_code, "started_at": iso(r.started_at), "finished_at": iso(r.finished_at),
        "duration": r.duration, "stdout": r.stdout, "stderr": r.stderr,
        "stdout_bytes": r.stdout_bytes, "stderr_bytes": r.stderr_bytes,
        "stdout_cut": r.stdout_cut, "stderr_cut": r.stderr_cut, "truncated": bool(r.stdout_cut or r.stderr_cut),
        "output_digest": r.output_digest,
    }


def host_in_scope(host_name: Any, scope: HostScope) -> ColumnElement[bool]:
    """SQL: ``host_name`` (a column) names a host in one of the scope's groups (always true: every host)."""
    if scope.groups is None:
        return true()
    hosts = (select(Host.name).join(HostGroup, HostGroup.host_id == Host.id)
             .join(Group, Group.id == HostGroup.group_id).where(Group.name.in_(scope.groups)))
    return host_name.in_(hosts)  # type: ignore[no-any-return]


def task_in_scope(scope: HostScope) -> ColumnElement[bool]:
    """SQL: the task has at least one host in the scope (uses the results' (task_id, host_name) index)."""
    if scope.groups is None:
        return true()
    return exists(select(Result.id).where(Result.task_id == Task.id, host_in_scope(Result.host_name, scope)))


class Archive:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def tasks(self, f: TaskFilter, *, scope: HostScope, limit: int, offset: int) -> tuple[list[Task], int]:
        """Tasks with at least one host in ``scope``, newest first; (page, total)."""
        q = select(Task).where(task_in_scope(scope))
        if f.status:
            q = q.where(Task.status == _status(f.status, TaskStatus, "status"))
        if f.since:
            q = q.where(Task.created_at >= f.since)
        if f.until:
            q = q.where(Task.created_at <= f.until)
        if f.command:
            q = q.where(Task.command.contains(f.command, autoescape=True))
        if f.created_by:
            q = q.where(Task.created_by == f.created_by)
        return await self._page(q, Task.id.desc(), limit, offset)

    async def task(self, task_id: int, *, scope: HostScope) -> Task:
        """The task, if ``scope`` reaches one of its hosts; NotFound otherwise (a hidden task is not there)."""
        async with self.db.session() as s:
            if scope.everywhere:
                t = await s.get(Task, task_id)
            else:
                t = await s.scalar(select(Task).where(Task.id == task_id, task_in_scope(scope)))
        if t is None:
            hint = "" if scope.everywhere else f" among the tasks you may read (with a host in {scope.describe()})"
            raise NotFound(f"task {task_id} not found{hint}")
        return t

    async def hosts_of(self, task_id: int, *, scope: HostScope) -> set[str] | None:
        """The task's hosts within ``scope`` (None: every host, no filtering needed)."""
        if scope.everywhere:
            return None
        async with self.db.session() as s:
            rows = await s.scalars(select(Result.host_name).where(
                Result.task_id == task_id, host_in_scope(Result.host_name, scope)))
            return set(rows)

    async def results(self, f: ResultFilter, *, scope: HostScope, limit: int, offset: int) -> tuple[list[Result], int]:
        """Per-host results of hosts in ``scope``; (page, total)."""
        q = select(Result).where(host_in_scope(Result.host_name, scope))
        if f.task is not None:
            q = q.where(Result.task_id == f.task)
        if f.host:
            q = q.where(Result.host_name == f.host)
        if f.status:
            q = q.where(Result.status == _status(f.status, HostStatus, "status"))
        if f.since:
            q = q.where(Result.started_at >= f.since)
        if f.until:
            q = q.where(Result.started_at <= f.until)
        order = Result.host_name.asc() if f.task is not None else Result.id.desc()
        return await self._page(q, order, limit, offset)

    async def output_groups(self, task_id: int, *, scope: HostScope) -> list[dict[str, Any]]:
        """Hosts of a task (those in ``scope``) grouped by identical output (same exit code, stdout and stderr)."""
        async with self.db.session() as s:
            rows = (await s.execute(
                select(Result.output_digest, Result.host_name, Result.status)
                .where(Result.task_id == task_id, host_in_scope(Result.host_name, scope)).order_by(Result.host_name)
            )).all()
        groups: dict[str, dict[str, Any]] = {}
        for digest, host, status in rows:
            key = digest or f"-{status}"
            g = groups.setdefault(key, {"digest": digest, "status": status, "hosts": []})
            g["hosts"].append(host)
        return sorted(groups.values(), key=lambda g: -len(g["hosts"]))

    async def _page(self, q: Select[Any], order: Any, limit: int, offset: int) -> tuple[list[Any], int]:
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
            rows = (await s.scalars(q.order_by(order).limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)
