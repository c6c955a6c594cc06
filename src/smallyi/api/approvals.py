"""Approvals: commands a "dangerous" policy rule holds until a second person decides."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from smallyi.api.deps import Paging, State, User, client_address, listing
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import ErrorOut, Page
from smallyi.api.schemas.approvals import CommandApprovalOut
from smallyi.approvals.decisions import Decisions
from smallyi.approvals.requests import RequestDict, approval_dict
from smallyi.auth.caller import Caller
from smallyi.runtime import Runtime
from smallyi.types import ApprovalStatus

router = APIRouter(prefix="/approvals", tags=["approvals"])
#: the refusals these routes add to the common ones
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such approval"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "already decided, or its requester can no longer act (it is cancelled)"}}
# response_model_exclude_unset: a target names only the parts it was given; keys left out stay out


@router.get("", dependencies=[needs(Perm.TASKS_READ)], response_model=Page[CommandApprovalOut],
            response_model_exclude_unset=True)
async def list_approvals(state: State, page: Paging,
                         status: ApprovalStatus | None = None) -> dict[str, Any]:
    """Approval requests, newest first."""
    rows, total = await state.approvals.list(status=status, limit=page.limit, offset=page.offset)
    return listing([approval_dict(r) for r in rows], total)


@router.get("/{approval_id}", dependencies=[needs(Perm.TASKS_READ)], response_model=CommandApprovalOut,
            response_model_exclude_unset=True, responses=NOT_FOUND)
async def get_approval(approval_id: int, state: State) -> RequestDict:
    return approval_dict(await state.approvals.get(approval_id))


@router.post("/{approval_id}/approve", dependencies=[needs(Perm.APPROVALS_DECIDE)],
             response_model=CommandApprovalOut, response_model_exclude_unset=True, responses={**NOT_FOUND, **CONFLICT})
async def approve(approval_id: int, user: User, state: State, request: Request) -> RequestDict:
    """Approve another user's request: a task's command runs now as theirs, with their rights now (deny
    rules still apply); an SOP step waiting for it goes on. A request whose requester can no longer act
    (disabled, removed from the config) is cancelled instead (409)."""
    return approval_dict(await _decisions(state).approve(approval_id, Caller.of(user, client=client_address(request))))


@router.post("/{approval_id}/reject", dependencies=[needs(Perm.APPROVALS_DECIDE)],
             response_model=CommandApprovalOut, response_model_exclude_unset=True, responses={**NOT_FOUND, **CONFLICT})
async def reject(approval_id: int, user: User, state: State, request: Request) -> RequestDict:
    """Refuse another user's request; it never runs."""
    return approval_dict(await _decisions(state).reject(approval_id, Caller.of(user, client=client_address(request))))


def _decisions(state: Runtime) -> Decisions:
    return Decisions(state.tasks, state.approvals, state.audit)
