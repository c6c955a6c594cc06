"""The caller's console preferences (language first), remembered server-side per user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import State, User
from smallyi.api.permissions import SIGNED_IN, needs
from smallyi.api.schemas.preferences import PreferencesOut
from smallyi.users.preferences import Preferences

router = APIRouter(prefix="/preferences", tags=["console"])


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: "en" or "zh-CN"
    language: str | None = Field(default=None, max_length=16)
    #: other settings to merge; a null value removes one
    data: dict[str, Any] | None = None


@router.get("", response_model=PreferencesOut, dependencies=[needs(SIGNED_IN)])
async def get_preferences(user: User, state: State) -> dict[str, Any]:
    """The caller's preferences; ``language`` is null until the user picks one."""
    return await Preferences(state.db).get(user.username)


@router.put("", response_model=PreferencesOut, dependencies=[needs(SIGNED_IN)])
async def put_preferences(body: PreferencesIn, user: User, state: State) -> dict[str, Any]:
    """Change the caller's preferences; answers all of them afterwards."""
    return await Preferences(state.db).update(user.username, language=body.language, data=body.data)
