"""Approvals: commands a "dangerous" policy rule holds until a second person decides."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request

from smallyi.api.deps import Paging, State, User, client_address, listing
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import ErrorOut, Page
from smallyi.api.schemas.approvals import CommandApprovalOut
from smallyi.auth.approvals import SUBMITTED, approval_dict, kind_of
from smallyi.errors import Forbidden
from smallyi.inventory.selectors import Selector
from smallyi.tasks.service import TaskRequest

router = APIRouter(prefix="/approvals", tags=["approvals"])
#: the refusals these routes add to the common ones
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such approval"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "already decided, or its requester can no longer act (it is cancelled)"}}
# response_model_exclude_unset: a target names only the parts it was given; keys left out stay out


@router.get("", dependencies=[needs(Perm.TASKS_READ)], response_model=Page[CommandApprovalOut],
            response_model_exclude_unset=True)
async def list_approvals(state: State, page: Paging,
                         status: Literal["pending", "approved", "rejected", "expired", "cancelled"] | None = None) -> dict[str, Any]:
    """Approval requests, newest first."""
    rows, total = await state.gate.approvals.list(status=status, limit=page.limit, offset=page.offset)
    return listing([approval_dict(r) for r in rows], total)


@router.get("/{approval_id}", dependencies=[needs(Perm.TASKS_READ)], response_model=CommandApprovalOut,
            response_model_exclude_unset=True, responses=NOT_FOUND)
async def get_approval(approval_id: int, state: State) -> dict[str, Any]:
    return approval_dict(await state.gate.approvals.get(approval_id))


@router.post("/{approval_id}/approve", dependencies=[needs(Perm.APPROVALS_DECIDE)],
             response_model=CommandApprovalOut, response_model_exclude_unset=True, responses={**NOT_FOUND, **CONFLICT})
async def approve(approval_id: int, user: User, state: State, request: Request) -> dict[str, Any]:
    """Approve another user's request: a task's command runs now as theirs, with their rights now (deny
    rules still apply); an SOP step waiting for it goes on. A request whose requester can no longer act
    (disabled, removed from the config) is cancelled instead (409)."""
    gate = state.gate
    row = await gate.approvals.get(approval_id)
    req = dict(row.request)
    t = req.get("target", {})
    selector = Selector(group=t.get("group"), hosts=tuple(t.get("hosts", ())), labels=dict(t.get("labels", {})))
    hosts = await state.inventory.resolve(selector)
    user.access.check_hosts(Perm.APPROVALS_DECIDE, [(h.name, h.permission_groups) for h in hosts])
    requester = await gate.approvals.requester(row)
    role = str(req.get("role") or "admin")
    if requester is not None and requester.access is not None and kind_of(row) in SUBMITTED:
        try:  # the task runs with the requester's rights as they are now, not as they were when asked
            requester.access.check_hosts(Perm.TASKS_RUN, [(h.name, h.permission_groups) for h in hosts])
        except Forbidden as exc:
            raise Forbidden(f"approval {approval_id}: the requester may no longer run this: {exc.message}") from None
        role = requester.access.role
    row = await gate.approvals.decide(approval_id, by=user.username, approve=True)
    await state.audit.record("policy.approved", actor=user.username, client=client_address(request),
                             target=selector.describe(), perm=Perm.APPROVALS_DECIDE.value, source="api",
                             detail={"approval": approval_id, "requested_by": row.requested_by,
                                     "command": row.command})
    if kind_of(row) not in SUBMITTED:  # an SOP step waits for this decision and runs what was judged
        return approval_dict(row)
    task_id = await state.tasks.submit(
        TaskRequest(selector, row.command, timeout=req.get("timeout"), concurrency=req.get("concurrency"),
                    rate=float(req.get("rate") or 0.0), notify=req.get("notify")),
        user=row.requested_by, approved_by=user.username, role=role,
        client=client_address(request),
    )
    await gate.approvals.set_task(approval_id, task_id)
    return approval_dict(await gate.approvals.get(approval_id))


@router.post("/{approval_id}/reject", dependencies=[needs(Perm.APPROVALS_DECIDE)],
             response_model=CommandApprovalOut, response_model_exclude_unset=True, responses={**NOT_FOUND, **CONFLICT})
async def reject(approval_id: int, user: User, state: State, request: Request) -> dict[str, Any]:
    """Refuse another user's request; it never runs."""
    row = await state.gate.approvals.decide(approval_id, by=user.username, approve=False)
    await state.audit.record("policy.rejected", actor=user.username, client=client_address(request),
                             target=str(row.request.get("target", "")), perm=Perm.APPROVALS_DECIDE.value,
                             source="api", detail={"approval": approval_id, "command": row.command})
    return approval_dict(row)
