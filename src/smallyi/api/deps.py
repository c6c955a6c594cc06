"""Dependencies shared by the routers: the application state, the caller, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, WebSocket

from smallyi.auth.service import Principal
from smallyi.errors import AuthError
from smallyi.runtime import Runtime

SESSION_COOKIE = "smallyi_session"
#: cookie-authenticated writes must carry this header: a cross-site form cannot set it (CSRF guard)
CSRF_HEADER = "x-smallyi-csrf"


AppState = Runtime


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.smallyi
    return state


def client_address(request: Request | WebSocket) -> str:
    return request.client.host if request.client else "unknown"


def _token_from(request: Request | WebSocket) -> tuple[str | None, bool]:
    """(token, came_from_cookie)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if isinstance(request, WebSocket):
        for proto in request.headers.get("sec-websocket-protocol", "").split(","):
            proto = proto.strip()
            if proto.startswith("bearer."):
                return proto[7:], False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


async def current_principal(request: Request) -> Principal:
    token, from_cookie = _token_from(request)
    if not token:
        raise AuthError("not logged in: send 'Authorization: Bearer <token>' (POST /api/v1/auth/login gives one)")
    if from_cookie and request.method not in ("GET", "HEAD", "OPTIONS") and CSRF_HEADER not in request.headers:
        raise AuthError(f"cookie-authenticated writes need the {CSRF_HEADER} header")
    state: AppState = request.app.state.smallyi
    return await state.auth.authenticate(token)


async def websocket_principal(ws: WebSocket) -> Principal:
    token, _ = _token_from(ws)
    if not token:
        raise AuthError("not logged in")
    state: AppState = ws.app.state.smallyi
    return await state.auth.authenticate(token)


async def accept_websocket(ws: WebSocket) -> Principal | None:
    """Authenticate a WebSocket, then accept it (echoing a ``bearer.`` subprotocol if one was used).

    On failure the socket is closed with code 4401 and the reason, and None is returned.
    """
    try:
        principal = await websocket_principal(ws)
    except AuthError as exc:
        await ws.close(code=4401, reason=exc.message[:120])
        return None
    proto = next((p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")
                  if p.strip().startswith("bearer.")), None)
    await ws.accept(subprotocol=proto)
    return principal


State = Annotated[AppState, Depends(get_state)]
User = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def page(
    limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: Annotated[int, Query(ge=0)] = 0
) -> Page:
    return Page(limit, offset)


Paging = Annotated[Page, Depends(page)]


def listing(items: list[Any], total: int) -> dict[str, Any]:
    """The one list shape: ``{"items": [...], "total": N}``."""
    return {"items": items, "total": total}
