"""What the terminal's HTTP routes answer (``terminal.sessions.session_dict``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer


class SessionOut(Answer):
    """One recorded terminal session."""

    id: int
    user: str
    host: str
    address: str
    login_user: str
    client_address: str
    status: Literal["open", "closed", "idle", "failed", "interrupted"]
    reason: str
    cols: int
    rows: int
    started_at: str
    ended_at: str | None
    duration: float | None = Field(description="seconds; null while open")
    output_bytes: int
    input_bytes: int
    recording_bytes: int
    recording_truncated: bool
