"""Dependencies shared by the routers: the application state, the caller, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request, WebSocket
from pydantic import PlainSerializer

from smallyi.api.permissions import CSRF_HEADER, SESSION_COOKIE, authenticate
from smallyi.auth.service import Principal
from smallyi.errors import AuthError
from smallyi.runtime import Runtime
from smallyi.timestamps import iso

#: a timestamp field of a response model: written as every timestamp (``timestamps.iso``: UTC, ``Z``, ms)
Stamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]

__all__ = ["CSRF_HEADER", "SESSION_COOKIE", "AppState", "Paging", "State", "User", "accept_websocket",
           "client_address", "current_principal", "get_state", "listing", "page"]

AppState = Runtime


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.smallyi
    return state


def client_address(request: Request | WebSocket) -> str:
    return request.client.host if request.client else "unknown"


async def current_principal(request: Request) -> Principal:
    """The caller (already resolved by the route's ``needs(...)`` declaration, else authenticated now)."""
    return await authenticate(request)


async def websocket_principal(ws: WebSocket) -> Principal:
    return await authenticate(ws)


#: WebSocket close code for "log in again": refused at the start, or the login ended while open
CLOSE_AUTH = 4401


async def accept_websocket(ws: WebSocket) -> Principal | None:
    """Authenticate a WebSocket, then accept it (echoing a ``bearer.`` subprotocol if one was used).

    On failure the socket is closed with code 4401 and the reason, and None is returned.
    """
    try:
        principal = await websocket_principal(ws)
    except AuthError as exc:
        await ws.close(code=CLOSE_AUTH, reason=exc.message[:120])
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
