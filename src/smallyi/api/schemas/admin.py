"""What the administration routes answer (``reloader.Report.to_dict``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer


class ChangeOut(Answer):
    key: str = Field(description="the config key, section.field")
    detail: str = Field(description="what changed, without secret values")
    restart: str | None = Field(default=None, description="why it waits for a restart; absent: applied now")


class ReloadOut(Answer):
    """One reload's report (a refused reload is a 422, not this)."""

    status: Literal["reloaded", "unchanged", "refused"]
    config: str = Field(description="the config file reloaded")
    by: str
    via: Literal["api", "signal"]
    started_at: str
    finished_at: str
    started_ns: int
    changed: list[ChangeOut]
    applied: list[str] = Field(description="the keys applied at once")
    restart: list[ChangeOut] = Field(description="the changes that wait for a restart")
    error: str | None
    message: str = Field(description="the report in one paragraph")
