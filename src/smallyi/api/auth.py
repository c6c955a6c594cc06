"""Login, logout, the caller's identity and API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import SESSION_COOKIE, Paging, State, User, client_address, listing
from smallyi.api.permissions import PUBLIC, SIGNED_IN, mark_audited, needs
from smallyi.api.schemas import Page
from smallyi.api.schemas.auth import LoginOut, LogoutAllOut, MeOut, NewTokenOut, TokenOut
from smallyi.auth.service import TokenInfo
from smallyi.durations import parse_duration
from smallyi.errors import Throttled
from smallyi.timestamps import iso

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    #: optional lifetime as a Go duration ("720h"); none means until revoked
    ttl: str | None = None


def _out(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": iso(t.created_at),
            "expires_at": iso(t.expires_at), "last_used_at": iso(t.last_used_at)}


@router.post("/login", response_model=LoginOut, dependencies=[needs(PUBLIC)])
async def login(body: LoginIn, request: Request, response: Response, state: State) -> dict[str, Any]:
    """Exchange a username and password for a session bearer token (also set as an HttpOnly cookie)."""
    try:
        token = await state.auth.login(body.username, body.password, client_address(request))
    except Throttled:
        mark_audited(request)  # the first refusal since the throttle closed is recorded, not each of a flood
        raise
    mode = state.settings.server.cookie_secure
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict",
        secure=mode == "always" or (mode == "auto" and request.url.scheme == "https"),
        max_age=int(state.settings.auth.session_ttl),
        path=state.settings.server.base_path or "/",
    )
    return {"token": token, "username": body.username}


@router.post("/logout", status_code=204, dependencies=[needs(SIGNED_IN)])
async def logout(user: User, state: State, request: Request) -> Response:
    await state.auth.logout(user)
    resp = Response(status_code=204)
    resp.delete_cookie(SESSION_COOKIE, path=state.settings.server.base_path or "/")
    return resp


class LogoutAllIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: true: end the login sessions only, and leave the caller's API tokens working
    keep_tokens: bool = False


@router.post("/logout-all", response_model=LogoutAllOut, dependencies=[needs(SIGNED_IN)])
async def logout_everywhere(user: User, state: State, response: Response,
                            body: LogoutAllIn | None = None) -> dict[str, Any]:
    """End every login session of the caller (every browser and CLI login) and revoke their API tokens;
    ``{"keep_tokens": true}`` leaves the API tokens working."""
    done = await state.auth.logout_everywhere(user, keep_tokens=bool(body and body.keep_tokens))
    response.delete_cookie(SESSION_COOKIE, path=state.settings.server.base_path or "/")
    return {"ended_sessions": done.sessions, "revoked_tokens": done.tokens}


@router.get("/me", response_model=MeOut, dependencies=[needs(SIGNED_IN)])
async def me(user: User) -> dict[str, Any]:
    """Who is calling, with the permissions of their role and the groups they hold them over (empty: all),
    so a client can hide what it may not do (the API still checks every call)."""
    return {"username": user.username, "role": user.role, "token_kind": user.token_kind,
            "permissions": sorted(p.value for p in user.access.perms), "groups": list(user.access.groups)}


@router.get("/tokens", response_model=Page[TokenOut], dependencies=[needs(SIGNED_IN)])
async def list_tokens(user: User, state: State, page: Paging) -> dict[str, Any]:
    """The caller's live API tokens, newest first, a page at a time (never the token text)."""
    items = [_out(t) for t in await state.auth.list_api_tokens(user)]
    return listing(items[page.offset:page.offset + page.limit], len(items))


@router.post("/tokens", status_code=201, response_model=NewTokenOut, dependencies=[needs(SIGNED_IN)])
async def create_token(body: TokenIn, user: User, state: State) -> dict[str, Any]:
    """A long-lived API token for scripts and CI. The token text is in this answer only."""
    ttl = parse_duration(body.ttl, field="ttl") if body.ttl else None
    token, info = await state.auth.create_api_token(user, body.name, ttl)
    return {**_out(info), "token": token}


@router.delete("/tokens/{token_id}", status_code=204, dependencies=[needs(SIGNED_IN)])
async def revoke_token(token_id: int, user: User, state: State) -> Response:
    await state.auth.revoke_api_token(user, token_id)
    return Response(status_code=204)
