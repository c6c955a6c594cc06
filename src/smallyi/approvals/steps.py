"""SOP approval steps: a run waits at a step ``type: approval`` until a listed (or any other) user decides.

The request is one row per run and step, made when the step first waits and found again after a restart;
the run's starter cannot decide it, and when the step lists approvers only they can.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypedDict

from sqlalchemy import func, select, update

from smallyi.errors import Conflict, Forbidden, NotFound
from smallyi.storage.db import Database
from smallyi.storage.models import SopApproval, utcnow
from smallyi.storage.rows import affected
from smallyi.timestamps import iso, iso_seconds
from smallyi.types import ApprovalStatus


class StepApprovalDict(TypedDict):
    """An approval step's request and decision (``ApprovalOut``)."""

    id: int
    run_id: int
    step_id: str
    status: ApprovalStatus
    message: str
    approvers: list[str]
    requested_by: str
    decided_by: str | None
    decided_at: str | None
    comment: str | None
    created_at: str
    expires_at: str


def step_approval_dict(a: SopApproval) -> StepApprovalDict:
    return {"id": a.id, "run_id": a.run_id, "step_id": a.step_id, "status": ApprovalStatus(a.status),
            "message": a.message,
            "approvers": list(a.approvers), "requested_by": a.requested_by, "decided_by": a.decided_by or None,
            "decided_at": iso(a.decided_at), "comment": a.comment or None, "created_at": iso(a.created_at),
            "expires_at": iso(a.expires_at)}


class StepApprovals:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ask(self, run_id: int, step_id: str, *, message: str, approvers: Sequence[str],
                  requested_by: str, ttl: float) -> SopApproval:
        """The step's approval, created on first call; the same row after a restart."""
        async with self.db.session.begin() as s:
            row = await s.scalar(select(SopApproval).where(SopApproval.run_id == run_id,
                                                           SopApproval.step_id == step_id))
            if row is None:
                now = utcnow()
                row = SopApproval(run_id=run_id, step_id=step_id, status=ApprovalStatus.PENDING, message=message,
                                  approvers=list(approvers), requested_by=requested_by, created_at=now,
                                  expires_at=now + timedelta(seconds=ttl))
                s.add(row)
        return row

    async def get(self, approval_id: int) -> SopApproval:
        async with self.db.session() as s:
            row = await s.get(SopApproval, approval_id)
        if row is None:
            raise NotFound(f"SOP approval {approval_id} not found")
        return row

    async def at_step(self, run_id: int, step_id: str) -> SopApproval:
        async with self.db.session() as s:
            row = await s.scalar(select(SopApproval).where(SopApproval.run_id == run_id,
                                                           SopApproval.step_id == step_id))
        if row is None:
            raise NotFound(f"run {run_id} has no approval waiting at step {step_id!r}")
        return row

    async def list(self, *, status: str | None = None, run_id: int | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[SopApproval], int]:
        """(one page, newest first; how many match in all)."""
        q = select(SopApproval)
        if status:
            q = q.where(SopApproval.status == status)
        if run_id is not None:
            q = q.where(SopApproval.run_id == run_id)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(q.subquery()))
            rows = (await s.scalars(q.order_by(SopApproval.id.desc()).limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    async def decide(self, approval_id: int, *, by: str, approve: bool, comment: str = "") -> SopApproval:
        """Approve or reject once; not by the run's starter, and only by a listed approver if any are listed."""
        row = await self.get(approval_id)
        if row.status != ApprovalStatus.PENDING:
            raise Conflict(f"approval {approval_id} is already {row.status}")
        if row.expires_at <= utcnow():
            await self._set(approval_id, ApprovalStatus.PENDING, status=ApprovalStatus.EXPIRED)
            raise Conflict(f"approval {approval_id} expired at {iso_seconds(row.expires_at)}")
        if by == row.requested_by:
            raise Forbidden("the user who started the run cannot approve its steps; another user must")
        if row.approvers and by not in row.approvers:
            raise Forbidden(f"only {', '.join(row.approvers)} may decide approval {approval_id}")
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        if not await self._set(approval_id, ApprovalStatus.PENDING, status=status, decided_by=by,
                               decided_at=utcnow(), comment=comment):
            raise Conflict(f"approval {approval_id} was decided meanwhile")
        return await self.get(approval_id)

    async def expire(self, approval_id: int, status: ApprovalStatus = ApprovalStatus.EXPIRED, *,
                     comment: str = "") -> None:
        """End a pending approval without a decision (expired, or cancelled with the run)."""
        await self._set(approval_id, ApprovalStatus.PENDING, status=status,
                        **({"comment": comment, "decided_at": utcnow()} if comment else {}))

    async def _set(self, approval_id: int, expect: ApprovalStatus, **values: Any) -> bool:
        async with self.db.session.begin() as s:
            res = await s.execute(update(SopApproval).where(SopApproval.id == approval_id,
                                                            SopApproval.status == expect).values(**values))
        return bool(affected(res))
