"""What the schedule routes answer: schedules and their fires (one per slot)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from smallyi.api.schemas import Answer
from smallyi.api.schemas.tasks import TargetOut


class ScheduleNotifyOut(Answer):
    """Only the parts given (``{}``: no notification of its own)."""

    channels: list[str] | None = None
    on: list[Literal["success", "failure", "finish"]] | None = None
    message: str | None = None


class FireOut(Answer):
    """One slot handled."""

    id: int
    schedule_id: int
    slot: str = Field(description="the slot's time, whenever the scheduler noticed it")
    fired_at: str
    finished_at: str | None
    status: str = Field(description="running, skipped (overlap), missed, suspended, error, or how its task or "
                                    "SOP run ended (success, failed ...)")
    reason: str | None
    task_id: int | None
    run_id: int | None = Field(description="the SOP run it started")
    runner: str = Field(description="the process that claimed the slot")


class ScheduleOut(Answer):
    id: int
    name: str
    description: str
    cron: str
    timezone: str
    kind: Literal["command", "sop"]
    command: str | None
    target: TargetOut | None
    timeout: float | None
    sop_name: str | None
    vars: dict[str, Any]
    environment: str | None
    missed: Literal["skip", "run_once"] = Field(description="slots passed while no scheduler ran: skip, or run the latest once")
    overlap: Literal["skip", "allow"] = Field(description="a slot while the previous run still runs: skip it, or run anyway")
    enabled: bool
    notify: ScheduleNotifyOut
    created_by: str
    owner: str = Field(description="whose rights it runs with (the same as created_by)")
    suspended: str | None = Field(description="why its owner cannot act now (its slots then run nothing)")
    created_at: str
    updated_at: str
    next_slot: str | None = Field(description="null while paused")


class ScheduleListedOut(ScheduleOut):
    last_fire: FireOut | None = Field(description="its latest fire; null before the first")
