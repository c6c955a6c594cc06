"""Security views: the permission-matrix report, the caller's own rights, write-only secrets, and every
user's tokens and sessions (listed and revoked by an admin)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import Paging, State, User, client_address, listing
from smallyi.api.permissions import SIGNED_IN, Perm, needs
from smallyi.api.schemas import Page
from smallyi.api.schemas.security import AnyTokenOut, HostKeyOut, MyRightsOut, RbacReportOut, SecretOut
from smallyi.auth.service import TokenInfo
from smallyi.timestamps import iso

router = APIRouter(prefix="/security", tags=["security"])


@router.get("/rbac-report", response_model=RbacReportOut, dependencies=[needs(Perm.RBAC_REPORT)])
async def rbac_report(state: State) -> dict[str, Any]:
    """Who can do what on which groups, and findings against least privilege (admins beyond
    ``audit.max_admins``, grants unused for ``audit.unused_days``, roles broader than their use)."""
    a = state.settings.audit
    return await state.auth.rights_report(max_admins=a.max_admins, unused_days=a.unused_days)


@router.get("/me", response_model=MyRightsOut, dependencies=[needs(SIGNED_IN)])
async def my_rights(user: User) -> dict[str, Any]:
    """The caller's role, the groups it is granted over (``["*"]``: all) and its permissions."""
    acc = user.access
    return {"username": user.username, "role": user.role, "groups": list(acc.groups) or ["*"],
            "permissions": sorted(p.value for p in acc.perms)}


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: the secret itself: stored encrypted, never returned by any endpoint
    value: str = Field(min_length=1, max_length=65536, json_schema_extra={"writeOnly": True})
    kind: Literal["ssh-key", "password", "webhook", "token", "other"] = "other"
    description: str = Field(default="", max_length=1000)


@router.get("/secrets", response_model=Page[SecretOut], dependencies=[needs(Perm.SECRETS_READ)])
async def list_secrets(state: State) -> dict[str, Any]:
    """Stored secrets by name, kind and when they changed; never their values."""
    items = [s.to_dict() for s in await state.secrets.list()]
    return listing(items, len(items))


@router.put("/secrets/{name}", response_model=SecretOut, dependencies=[needs(Perm.SECRETS_WRITE)])
async def put_secret(name: str, body: SecretIn, user: User, state: State) -> dict[str, Any]:
    """Store (or replace) a secret, encrypted at rest; the answer shows everything but the value."""
    info = await state.secrets.put(name, body.value, kind=body.kind, description=body.description,
                                   by=user.username)
    return info.to_dict()


@router.delete("/secrets/{name}", status_code=204, dependencies=[needs(Perm.SECRETS_WRITE)])
async def delete_secret(name: str, state: State) -> Response:
    await state.secrets.delete(name)
    return Response(status_code=204)


@router.get("/hostkeys", response_model=Page[HostKeyOut], dependencies=[needs(Perm.HOSTS_READ)])
async def list_host_keys(state: State) -> dict[str, Any]:
    """Host keys pinned on first use (``ssh.host_key_policy: accept-new``), with their fingerprints."""
    items = await state.host_keys.list()
    return listing(items, len(items))


@router.delete("/hostkeys/{host}", status_code=204, dependencies=[needs(Perm.HOSTKEYS_WRITE)])
async def forget_host_key(host: str, user: User, state: State) -> Response:
    """Forget a host's pinned key (after a reinstall): its next key is trusted on first use again."""
    await state.host_keys.forget(host)
    await state.audit.record("hostkey.forget", actor=user.username, target=host, perm=Perm.HOSTKEYS_WRITE.value,
                             source="api")
    return Response(status_code=204)


def _token(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "user": t.username, "kind": t.kind, "name": t.name, "prefix": t.prefix,
            "created_at": iso(t.created_at), "expires_at": iso(t.expires_at), "last_used_at": iso(t.last_used_at)}


@router.get("/tokens", response_model=Page[AnyTokenOut], dependencies=[needs(Perm.TOKENS_MANAGE)])
async def list_all_tokens(state: State, page: Paging, user: str | None = None,
                          kind: Literal["api", "session"] | None = None) -> dict[str, Any]:
    """Every user's live API tokens and login sessions (``?user=NAME``, ``?kind=api|session``), newest first;
    never the token text."""
    items, total = await state.auth.all_tokens(user=user, kind=kind, limit=page.limit, offset=page.offset)
    return listing([_token(t) for t in items], total)


@router.delete("/tokens/{token_id}", response_model=AnyTokenOut, dependencies=[needs(Perm.TOKENS_MANAGE)])
async def revoke_any_token(token_id: int, user: User, state: State, request: Request) -> dict[str, Any]:
    """Revoke any user's API token or login session now (its open WebSockets close within
    ``auth.session_recheck``); answers what was revoked. Audited as ``auth.token_revoke``."""
    t = await state.auth.revoke_any(token_id)
    await state.audit.record("auth.token_revoke", actor=user.username, client=client_address(request),
                             target=f"user {t.username}", perm=Perm.TOKENS_MANAGE.value, source="api",
                             detail={"token": t.id, "kind": t.kind, "name": t.name, "prefix": t.prefix})
    return _token(t)
