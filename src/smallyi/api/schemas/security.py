"""What the ``/security`` routes answer: the rights report, secrets (never their values), pinned host keys
and every user's tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer
from smallyi.auth.rbac import Perm


class GrantOut(Answer):
    name: Perm
    scope: list[str] = Field(description='the groups it holds over; ["*"]: all')
    last_used: str | None = Field(description="the last audited use in the window; none: unused (or not tracked)")


class MatrixRowOut(Answer):
    user: str
    role: str
    groups: list[str] = Field(description='["*"]: all')
    permissions: list[GrantOut]
    last_login: str | None = Field(description="the last login in the window; none: none in it")


class RoleRowOut(Answer):
    role: str
    permissions: list[Perm]
    users: list[str] = Field(description="the enabled users holding it")


class RightsFindingOut(Answer):
    kind: Literal["too_many_admins", "unknown_role", "implicit_admin", "inactive_user", "unused_grants",
                  "role_broader_than_use"]
    subject: str = Field(description="the user or role it concerns")
    message: str


class RbacReportOut(Answer):
    """Who can do what on which groups, and findings against least privilege."""

    generated_at: str
    window_days: int = Field(description="the window judged (audit.unused_days)")
    matrix: list[MatrixRowOut] = Field(description="one row per enabled user")
    roles: list[RoleRowOut]
    findings: list[RightsFindingOut]


class MyRightsOut(Answer):
    username: str
    role: str
    groups: list[str] = Field(description='the groups granted over; ["*"]: all')
    permissions: list[Perm]


class SecretOut(Answer):
    """A stored secret: everything but its value."""

    name: str
    kind: Literal["ssh-key", "password", "webhook", "token", "other"]
    description: str
    key_id: str = Field(description="the master key it is encrypted under")
    created_at: str
    updated_at: str
    updated_by: str


class HostKeyOut(Answer):
    host: str
    key_type: str = Field(description="ssh-ed25519, ecdsa-sha2-nistp256 ...: one pin per key type the host showed")
    fingerprint: str
    pinned_at: str


class AnyTokenOut(Answer):
    """Any user's API token or login session: never its text."""

    id: int
    user: str
    kind: Literal["api", "session"]
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: str
    expires_at: str | None = Field(description="none: until revoked")
    last_used_at: str | None
