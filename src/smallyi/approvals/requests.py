"""Command approvals: a command held by a "dangerous" policy rule waits here for a second person.

The requester cannot approve their own request (nor the person behind an SOP run or a schedule that
asked: ``request["person"]``, or the schedule's owner now); an approval expires after
``policy.approval_ttl``. ``request["kind"]`` says what approving does: a ``task`` (or ``schedule``)
request runs as a task; an SOP step's (``sop-command``, ``sop-file``) is picked up by the step waiting
for it (``sop.steps.held``).

A request lives no longer than the account behind it: :class:`~smallyi.approvals.withdraw.Withdrawal` cancels the pending ones when
that account is disabled, and :meth:`Approvals.decide` refuses (and cancels) one whose person can no
longer act, whichever process disabled them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict

from sqlalchemy import func, select, update

from smallyi.auth.accounts import Accounts, Standing
from smallyi.errors import Conflict, Forbidden, NotFound
from smallyi.storage.db import Database
from smallyi.storage.models import Approval, utcnow
from smallyi.storage.rows import affected
from smallyi.timestamps import iso, iso_seconds
from smallyi.types import ApprovalStatus


class RequestDict(TypedDict):
    """A command approval request as the API answers it (``CommandApprovalOut``)."""

    id: int
    status: ApprovalStatus
    requested_by: str
    command: str
    #: the target as given: only the parts it names (group, hosts, labels)
    target: dict[str, Any]
    rule: str
    created_at: str
    expires_at: str
    decided_by: str | None
    decided_at: str | None
    task_id: int | None
    kind: str
    person: str
    client: str
    reason: str | None


def approval_dict(a: Approval) -> RequestDict:
    return {
        "id": a.id, "status": ApprovalStatus(a.status), "requested_by": a.requested_by, "command": a.command,
        "target": a.request.get("target", {}), "rule": a.rule, "created_at": iso(a.created_at),
        "expires_at": iso(a.expires_at), "decided_by": a.decided_by or None, "decided_at": iso(a.decided_at),
        "task_id": a.task_id, "kind": kind_of(a), "person": a.request.get("person") or a.requested_by,
        "client": a.request.get("client", ""), "reason": a.request.get("cancelled") or None,
    }


#: request kinds that approving submits as a task; the others are picked up by whoever waits for them
SUBMITTED = frozenset({"task", "schedule"})


def kind_of(a: Approval) -> str:
    return str(a.request.get("kind") or "task")


class Approvals:
    def __init__(self, db: Database, *, ttl: float, accounts: Accounts | None = None) -> None:
        self.db = db
        self.ttl = ttl
        #: who stands behind a request, and whether they still may act (None: not checked, unit tests)
        self.accounts = accounts

    async def create(self, *, requested_by: str, command: str, request: dict[str, Any], rule: str) -> Approval:
        row = Approval(status=ApprovalStatus.PENDING, requested_by=requested_by, command=command, request=request, rule=rule,
                       expires_at=utcnow() + timedelta(seconds=self.ttl))
        async with self.db.session.begin() as s:
            s.add(row)
        return row

    async def request(self, *, requested_by: str, command: str, request: dict[str, Any], rule: str) -> int:
        """Write a held command's request (the gate's :class:`~smallyi.auth.gate.Requests`); its id."""
        return (await self.create(requested_by=requested_by, command=command, request=request, rule=rule)).id

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

    async def requester(self, row: Approval) -> Standing | None:
        """The person behind ``row`` and their rights now; a pending request whose person can no longer
        act is cancelled here and Conflict raised. None when accounts are not checked."""
        if self.accounts is None:
            return None
        standing = await self.accounts.standing_of(row.requested_by)
        if not standing.ok and row.status == ApprovalStatus.PENDING:
            reason = f"the {standing.problem('requester')}"
            await self.cancel(row, reason)
            raise Conflict(f"approval {row.id} was cancelled: {reason}; nothing runs")
        return standing

    async def decide(self, approval_id: int, *, by: str, approve: bool) -> Approval:
        """Mark a pending approval approved or rejected (once, by someone other than the requester)."""
        row = await self.get(approval_id)
        behind = await self.accounts.person_of(row.requested_by) if self.accounts is not None else ""
        if by in (row.requested_by, row.request.get("person"), behind):
            raise Forbidden("you cannot decide on your own request; another user with approvals.decide must")
        if row.status == ApprovalStatus.PENDING and approve:
            await self.requester(row)
        if row.status == ApprovalStatus.PENDING and row.expires_at <= utcnow():
            await self._set(approval_id, ApprovalStatus.PENDING, status=ApprovalStatus.EXPIRED)
            raise Conflict(f"approval {approval_id} expired at {iso_seconds(row.expires_at)}; "
                           "run the command again to ask anew")
        if row.status != ApprovalStatus.PENDING:
            raise Conflict(f"approval {approval_id} is already {row.status}")
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        if not await self._set(approval_id, ApprovalStatus.PENDING, status=status, decided_by=by, decided_at=utcnow()):
            raise Conflict(f"approval {approval_id} was decided meanwhile")
        return await self.get(approval_id)

    async def cancel(self, row: Approval, reason: str) -> bool:
        """Cancel a pending request, keeping why (``reason`` in its answer)."""
        return await self._set(row.id, ApprovalStatus.PENDING, status=ApprovalStatus.CANCELLED, decided_at=utcnow(),
                               request={**row.request, "cancelled": reason})

    async def expire(self, approval_id: int) -> None:
        """A pending request nobody may decide any more (it expired, or what waited for it stopped)."""
        await self._set(approval_id, ApprovalStatus.PENDING, status=ApprovalStatus.EXPIRED)

    async def set_task(self, approval_id: int, task_id: int) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(Approval).where(Approval.id == approval_id).values(task_id=task_id))

    async def _set(self, approval_id: int, expect: ApprovalStatus, **values: Any) -> bool:
        async with self.db.session.begin() as s:
            res = await s.execute(update(Approval).where(Approval.id == approval_id, Approval.status == expect)
                                  .values(**values))
        return bool(affected(res))
