"""A host step the command policy holds for approval waits for the decision, then runs as approved.

Without this the step would fail and the approval, once given, would have nothing to run (approving
a ``template`` step's ``cat > DEST`` as a bare task would empty the file). The step shows as waiting
with the approval's id; another user approves or rejects it (``POST /api/v1/approvals/ID/...``), the
step then runs exactly what was judged, or fails with the decision. The wait ends with the run's
cancel or the approval's expiry. A restart interrupts the step (the approval is not resumed: run
again to ask anew).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from smallyi.auth.gate import Held
from smallyi.errors import SmallYiError
from smallyi.sop.statuses import SopStepStatus
from smallyi.sop.steps.base import StepCall
from smallyi.storage.models import utcnow
from smallyi.types import ApprovalStatus

T = TypeVar("T")

#: how often a held step looks at its approval (the decision may come from another process)
POLL = 0.5


class NotApproved(SmallYiError):
    """The approval was rejected, expired, or the run was cancelled while it waited; ``status``: the step's."""

    def __init__(self, message: str, *, status: SopStepStatus) -> None:
        super().__init__(message)
        self.status = status


async def gated(call: StepCall, attempt: Callable[[str], Awaitable[T | Held]]) -> T:
    """``attempt(approved_by)``: the first try with ``""``; held, the same again with the approver's name."""
    first = await attempt("")
    if not isinstance(first, Held):
        return first
    held = first
    approvals = call.deps.approvals
    await call.emit("step.waiting", {"approval_id": held.approval_id, "policy": True, "message": held.message})
    row = await approvals.get(held.approval_id)
    while row.status == ApprovalStatus.PENDING:
        if row.expires_at <= utcnow():
            await approvals.expire(row.id)
            raise NotApproved(f"approval {row.id} expired before anyone decided: {row.rule}",
                              status=SopStepStatus.FAILED)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.cancel.wait(), timeout=POLL)
        if call.cancel.is_set():
            await approvals.expire(row.id)
            raise NotApproved(f"the run was cancelled while approval {row.id} waited",
                              status=SopStepStatus.CANCELLED)
        row = await approvals.get(row.id)
    if row.status == ApprovalStatus.CANCELLED:
        raise NotApproved(f"approval {row.id} was cancelled: {row.request.get('cancelled') or row.rule}",
                          status=SopStepStatus.FAILED)
    if row.status != ApprovalStatus.APPROVED:
        raise NotApproved(f"approval {row.id} was {row.status} by {row.decided_by or 'nobody'}: {row.rule}",
                          status=SopStepStatus.FAILED)
    await call.emit("step.resumed", {"approval_id": row.id, "approved_by": row.decided_by})
    again = await attempt(row.decided_by)
    if isinstance(again, Held):  # the gate does not hold an approved request
        raise NotApproved(f"approval {row.id}: the approved command was held again", status=SopStepStatus.FAILED)
    return again
