"""What the approval routes answer: a command a "dangerous" policy rule holds for a second person."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer
from smallyi.api.schemas.tasks import TargetOut
from smallyi.types import ApprovalStatus


class CommandApprovalOut(Answer):
    """A command (a task, a scheduled task, an SOP step's command or file write) held for a second person."""

    id: int
    status: ApprovalStatus
    requested_by: str = Field(description="who it runs as: a user, sop:<run>:<person> (an SOP step), schedule:<name>")
    command: str
    target: TargetOut
    rule: str = Field(description="the policy rule that holds it, and why")
    created_at: str
    expires_at: str
    decided_by: str | None
    decided_at: str | None
    task_id: int | None = Field(description="the task it ran as, once approved")
    kind: Literal["task", "schedule", "sop-command", "sop-file"] = Field(
        description="what waits for it: task and schedule run as a task when approved; an SOP step goes on")
    person: str = Field(description="who stands behind the request (they may not approve it)")
    client: str = Field(description="where the request came from")
    reason: str | None = Field(description="why it was cancelled, when it was")


class ApprovalHeldOut(Answer):
    """A task held for approval instead of running (202)."""

    approval: CommandApprovalOut
    message: str
