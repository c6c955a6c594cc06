"""What waits on a decision in a person's name ends when that person can no longer act.

:class:`~smallyi.auth.service.AuthService` calls a :class:`Withdrawal` when a user is disabled or leaves the
config; it lives here, with both kinds of approval it cancels, and reaches ``auth`` as a callable the
runtime hands it (``auth`` sits below this package).
"""

from __future__ import annotations

from sqlalchemy import select, update

from smallyi.approvals.requests import Approvals
from smallyi.auth.accounts import Accounts
from smallyi.storage.db import Database
from smallyi.storage.models import Approval, SopApproval, utcnow
from smallyi.storage.rows import affected
from smallyi.types import ApprovalStatus


class Withdrawal:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, accounts: Accounts, person: str, reason: str) -> list[str]:
        """Cancel what waits on a decision in ``person``'s name, now that they cannot act; returns what was
        cancelled (``approval 3``, ``sop approval 7``).

        That is: the pending command approvals they (their schedules, their SOP runs) requested; the
        pending SOP approval steps of runs they stand behind; and the SOP approval steps that only listed
        approvers who can no longer log in (nobody else may decide those).
        """
        db = self.db
        done: list[str] = []
        async with db.session() as s:
            pending = (await s.scalars(select(Approval).where(Approval.status == ApprovalStatus.PENDING))).all()
            steps = (await s.scalars(select(SopApproval).where(SopApproval.status == ApprovalStatus.PENDING))).all()
        for a in pending:
            behind = {await accounts.person_of(a.requested_by), await accounts.person_of(str(a.request.get("person") or ""))}
            if person in behind and await Approvals(db, ttl=0).cancel(a, reason):
                done.append(f"approval {a.id}")
        active = await accounts.active()
        for st in steps:
            if await accounts.person_of(st.requested_by) == person:
                why = reason
            elif st.approvers and not set(st.approvers) & active:
                why = f"none of its approvers ({', '.join(st.approvers)}) can log in any more; {reason}"
            else:
                continue
            async with db.session.begin() as s:
                res = await s.execute(update(SopApproval).where(SopApproval.id == st.id, SopApproval.status == ApprovalStatus.PENDING)
                                      .values(status=ApprovalStatus.CANCELLED, decided_at=utcnow(), comment=why))
            if affected(res):
                done.append(f"sop approval {st.id}")
        return done
