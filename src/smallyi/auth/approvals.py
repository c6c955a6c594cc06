"""Approvals: a command held by a "dangerous" policy rule waits here for a second person.

The requester cannot approve their own request (nor the person behind an SOP run or a schedule that
asked: ``request["person"]``); an approval expires after ``policy.approval_ttl``. ``request["kind"]``
says what approving does: a ``task`` (or ``schedule``) request runs as a task; an SOP step's
(``sop-command``, ``sop-file``) is picked up by the step waiting for it (``sop.steps.held``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from smallyi.errors import Conflict, Forbidden, NotFound
from smallyi.storage.db import Database
from smallyi.storage.models import Approval, utcnow


def approval_dict(a: Approval) -> dict[str, Any]:
    return {
        "id": a.id, "status": a.status, "requested_by": a.requested_by, "command": a.command,
        "target": a.request.get("target", {}), "rule": a.rule, "created_at": a.created_at,
        "expires_at": a.expires_at, "decided_by": a.decided_by or None, "decided_at": a.decided_at,
        "task_id": a.task_id, "kind": kind_of(a), "person": a.request.get("person") or a.requested_by,
        "client": a.request.get("client", ""),
    }


#: request kinds that approving submits as a task; the others are picked up by whoever waits for them
SUBMITTED = frozenset({"task", "schedule"})


def kind_of(a: Approval) -> str:
    return str(a.request.get("kind") or "task")


class Approvals:
    def __init__(self, db: Database, *, ttl: float) -> None:
        self.db = db
        self.ttl = ttl

    async def create(self, *, requested_by: str, command: str, request: dict[str, Any], rule: str) -> Approval:
        row = Approval(status="pending", requested_by=requested_by, command=command, request=request, rule=rule,
                       expires_at=utcnow() + timedelta(seconds=self.ttl))
        async with self.db.session.begin() as s:
            s.add(row)
        return row

    async def get(self, approval_id: int) -> Approval:
        async with self.db.session() as s:
            row = await s.get(Approval, approval_id)
        if row is None:
            raise NotFound(f"approval {approval_id} not found")
        return row

    async def list(self, *, status: str | None, limit: int, offset: int) -> tuple[list[Approval], int]:
        """(one page, newest first; how many match in all)."""
        q = select(Approval)
        if status:
            q = q.where(Approval.status == status)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(q.subquery()))
            rows = (await s.scalars(q.order_by(Approval.id.desc()).limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    async def decide(self, approval_id: int, *, by: str, approve: bool) -> Approval:
        """Mark a pending approval approved or rejected (once, by someone other than the requester)."""
        row = await self.get(approval_id)
        if by in (row.requested_by, row.request.get("person")):
            raise Forbidden("you cannot decide on your own request; another user with approvals.decide must")
        if row.status == "pending" and row.expires_at <= utcnow():
            await self._set(approval_id, "pending", status="expired")
            raise Conflict(f"approval {approval_id} expired at {row.expires_at.isoformat(timespec='seconds')}; "
                           "run the command again to ask anew")
        if row.status != "pending":
            raise Conflict(f"approval {approval_id} is already {row.status}")
        status = "approved" if approve else "rejected"
        if not await self._set(approval_id, "pending", status=status, decided_by=by, decided_at=utcnow()):
            raise Conflict(f"approval {approval_id} was decided meanwhile")
        return await self.get(approval_id)

    async def expire(self, approval_id: int) -> None:
        """A pending request nobody may decide any more (it expired, or what waited for it stopped)."""
        await self._set(approval_id, "pending", status="expired")

    async def set_task(self, approval_id: int, task_id: int) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(Approval).where(Approval.id == approval_id).values(task_id=task_id))

    async def _set(self, approval_id: int, expect: str, **values: Any) -> bool:
        async with self.db.session.begin() as s:
            res = await s.execute(update(Approval).where(Approval.id == approval_id, Approval.status == expect)
                                  .values(**values))
        return bool(res.rowcount)  # type: ignore[attr-defined]
