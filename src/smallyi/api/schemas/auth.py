"""What the ``/auth`` routes answer: sessions, the caller's identity and their API tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer
from smallyi.auth.rbac import Perm


class LoginOut(Answer):
    token: str = Field(description="the session bearer token (also set as an HttpOnly cookie)")
    username: str


class LogoutAllOut(Answer):
    ended_sessions: int = Field(description="login sessions ended")
    revoked_tokens: int = Field(description="API tokens revoked (0 with keep_tokens)")


class MeOut(Answer):
    username: str
    role: str
    token_kind: Literal["session", "api"] = Field(description="a login session or an API token")
    permissions: list[Perm] = Field(description="what the caller's role grants, sorted")
    groups: list[str] = Field(description="the host groups the permissions hold over; empty: all")


class TokenOut(Answer):
    """An API token as listed: never its text."""

    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: str
    expires_at: str | None = Field(description="none: until revoked")
    last_used_at: str | None


class NewTokenOut(TokenOut):
    token: str = Field(description="the token text: in this answer only, never shown again")
