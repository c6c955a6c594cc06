"""What the SOP run routes answer: runs, their steps and events, approvals and tickets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, RootModel

from smallyi.api.schemas import Answer
from smallyi.api.schemas.sop import PreviewOut, StepType
from smallyi.sop.statuses import SopRunStatus, SopStepStatus
from smallyi.types import ApprovalStatus


class RunTargetOut(Answer):
    """The run's default target for steps without one; each key is present only when given."""

    group: str | None = None
    hosts: list[str] | None = None
    labels: dict[str, str] | None = None


class SopRunOut(Answer):
    id: int
    sop: str | None = Field(description="the stored SOP's name; null for YAML run inline")
    sop_version: int | None = Field(description="the stored SOP's version it ran")
    status: SopRunStatus
    reason: str | None = Field(description="why it failed, was cancelled or interrupted")
    trigger: Literal["cli", "api", "schedule", "sop"] = Field(description="sop: called by another run's step")
    started_by: str
    environment: str | None
    target: RunTargetOut | None
    vars: dict[str, Any]
    dry_run: bool
    parent_run_id: int | None = Field(description="the run whose sop step started this one")
    parent_step: str | None
    schedule_id: int | None
    runner: str = Field(description="the process running it (server:<host>:<pid>, cli:<host>:<pid>)")
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration: float | None = Field(description="seconds, once finished")
    counts: dict[str, int] = Field(description="steps by status, e.g. {\"success\": 3, \"skipped\": 1}")
    last_seq: int = Field(description="the number of its latest event")


class RunStepOut(Answer):
    id: str
    type: StepType
    status: SopStepStatus
    reason: str | None
    wave: int
    attempts: int
    task_ids: list[int] = Field(description="the tasks it ran on hosts")
    result: dict[str, Any] = Field(description="what later steps read as .steps.<id> (fields depend on the type)")
    started_at: str | None
    finished_at: str | None
    duration: float | None = Field(description="seconds")


class ApprovalOut(Answer):
    id: int
    run_id: int
    step_id: str
    status: ApprovalStatus
    message: str
    approvers: list[str] = Field(description="who may decide (empty: anyone allowed but the run's starter)")
    requested_by: str
    decided_by: str | None
    decided_at: str | None
    comment: str | None
    created_at: str
    expires_at: str


class TicketOut(Answer):
    id: int
    run_id: int | None
    step_id: str | None
    template: str
    status: Literal["created", "failed"]
    ticket_id: str | None = Field(description="the id the ticket system gave it")
    url: str | None
    requester: str
    sla: str
    hosts: list[str]
    title: str
    error: str | None = Field(description="why it could not be opened")
    created_at: str


class SopRunDetailOut(SopRunOut):
    steps: list[RunStepOut]
    approvals: list[ApprovalOut]
    tickets: list[TicketOut]


class RunEventOut(Answer):
    seq: int = Field(description="its number in the run: ask for events after the last one seen")
    at: str
    kind: str = Field(description="run.start, step.start, step.finish, step.task, step.waiting ...")
    step: str | None
    data: dict[str, Any]


class CancelOut(Answer):
    id: int
    result: Literal["cancelling", "cancel requested"] = Field(
        description="cancelling: this server runs it; cancel requested: the process running it will stop it")


class RunStartOut(RootModel[SopRunOut | PreviewOut]):
    """What starting a run answers (201): the run; or, with ``dry_run``, what it would do (nothing runs)."""
