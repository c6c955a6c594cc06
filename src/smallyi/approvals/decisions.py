"""Deciding a command approval request: the checks, the audit record, and (for a held task) running it.

The API routes only call these; approving a held task submits it, so this package sits above ``tasks``.
"""

from __future__ import annotations

from smallyi.approvals.requests import SUBMITTED, Approvals, kind_of
from smallyi.audit.trail import AuditTrail
from smallyi.auth.caller import Caller
from smallyi.auth.rbac import Access, Perm
from smallyi.errors import Forbidden, SmallYiError
from smallyi.storage.models import Approval
from smallyi.tasks.service import Queued, TaskRequest, TaskService


class Decisions:
    def __init__(self, tasks: TaskService, approvals: Approvals, audit: AuditTrail) -> None:
        self.tasks = tasks
        self.approvals = approvals
        self.audit = audit

    async def approve(self, approval_id: int, decider: Caller) -> Approval:
        """Approve another user's request. A held task runs now as its requester's, with their rights
        now (deny rules still apply), and the row returned names it; an SOP step waiting for it goes on
        by itself. A request whose requester can no longer act is cancelled instead (Conflict)."""
        row = await self.approvals.get(approval_id)
        req = TaskRequest.from_dict(row.command, row.request)
        hosts = await self.tasks.inventory.resolve(req.selector)
        groups = [(h.name, h.permission_groups) for h in hosts]
        _access(decider).check_hosts(Perm.APPROVALS_DECIDE, groups)
        requester = await self.approvals.requester(row)
        role = str(row.request.get("role") or "admin")
        if requester is not None and requester.access is not None and kind_of(row) in SUBMITTED:
            try:  # the task runs with the requester's rights as they are now, not as they were when asked
                requester.access.check_hosts(Perm.TASKS_RUN, groups)
            except Forbidden as exc:
                raise Forbidden(f"approval {approval_id}: the requester may no longer run this: {exc.message}") from None
            role = requester.access.role
        row = await self.approvals.decide(approval_id, by=decider.user, approve=True)
        await self.audit.record("policy.approved", actor=decider.user, client=decider.client,
                                target=req.selector.describe(), perm=Perm.APPROVALS_DECIDE.value, source="api",
                                detail={"approval": approval_id, "requested_by": row.requested_by,
                                        "command": row.command})
        if kind_of(row) not in SUBMITTED:  # an SOP step waits for this decision and runs what was judged
            return row
        submitted = await self.tasks.submit(req, Caller(row.requested_by, role=role, client=decider.client),
                                            approved_by=decider.user)
        if not isinstance(submitted, Queued):  # an approved request is never held again
            raise SmallYiError(f"approval {approval_id}: the approved command was held again: {submitted.message}")
        await self.approvals.set_task(approval_id, submitted.task_id)
        return await self.approvals.get(approval_id)

    async def reject(self, approval_id: int, decider: Caller) -> Approval:
        """Refuse another user's request; it never runs."""
        row = await self.approvals.decide(approval_id, by=decider.user, approve=False)
        await self.audit.record("policy.rejected", actor=decider.user, client=decider.client,
                                target=str(row.request.get("target", "")), perm=Perm.APPROVALS_DECIDE.value,
                                source="api", detail={"approval": approval_id, "command": row.command})
        return row


def _access(caller: Caller) -> Access:
    return caller.principal.access if caller.principal is not None else Access.full(caller.user)
