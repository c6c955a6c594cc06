"""What the preferences routes answer (``users.preferences``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from smallyi.api.schemas import Answer


class PreferencesOut(Answer):
    language: Literal["en", "zh-CN"] | None = Field(description="null until the user picks one")
    data: dict[str, Any] = Field(description="the client's other settings, as it stored them")
