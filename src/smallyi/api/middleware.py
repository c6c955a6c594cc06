"""ASGI middleware: one audit record per mutating API call, security headers on every response, and
WebSockets that end with the login behind them.

Pure ASGI (no BaseHTTPMiddleware): streaming bodies and WebSockets pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from smallyi.api.deps import CLOSE_AUTH
from smallyi.api.permissions import AUDITED_KEY, PRINCIPAL_KEY, RULE_KEY
from smallyi.auth.rbac import Open
from smallyi.auth.service import Principal
from smallyi.errors import AuthError

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: for API answers (JSON): nothing may be loaded or framed from them
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: for the console's own pages (the index sets its own, stricter for scripts)
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class SecurityHeaders:
    """Adds CSP, nosniff, frame and referrer headers to each HTTP response that does not set them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # behind a path prefix (server.base_path) the path may carry it
            path = path[len(root):]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                csp = PAGE_CSP if ctype.startswith(b"text/html") else API_CSP
                wanted = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                wanted.append((b"content-security-policy", csp.encode()))
                if path.startswith("/api/"):
                    wanted.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in wanted if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SessionGuard:
    """Closes a WebSocket (code 4401) once its login ends: logout, revoked token, expiry, user disabled.

    One mechanism for every WebSocket route: after the route accepts a socket, its token is checked
    again every ``interval`` seconds. When it no longer holds, the socket is closed with the reason; the
    route then sees the client as gone (its ``receive`` returns a disconnect, its sends raise) and
    ends the way it does when a client leaves — a terminal closes its SSH channel and is audited.
    """

    def __init__(self, app: ASGIApp, interval: float = 5.0) -> None:
        self.app = app
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        ended = asyncio.Event()
        lock = asyncio.Lock()  # the close must not interleave with one of the route's sends
        watcher: asyncio.Task[None] | None = None
        pending: asyncio.Future[Message] | None = None
        why = ""

        async def watch(principal: Principal) -> None:
            nonlocal why
            auth = scope["app"].state.smallyi.auth
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await auth.still_valid(principal.token_id)
                except AuthError as exc:
                    async with lock:
                        why = exc.message[:120]
                        ended.set()
                        with contextlib.suppress(Exception):
                            await send({"type": "websocket.close", "code": CLOSE_AUTH, "reason": why})
                    log.info("WebSocket %s of %s closed: %s", scope.get("path", ""), principal.username, exc.message)
                    return
                except Exception:  # the database being away for a moment does not end anyone's session
                    log.warning("checking the session of a WebSocket failed; trying again", exc_info=True)

        async def guarded_send(message: Message) -> None:
            nonlocal watcher
            async with lock:
                if ended.is_set():  # as when the client has gone: a send fails, a close does nothing
                    if message["type"] == "websocket.close":
                        return
                    raise WebSocketDisconnect(CLOSE_AUTH, why)
                await send(message)
            if message["type"] == "websocket.accept":
                principal = state.get(PRINCIPAL_KEY)
                if isinstance(principal, Principal) and principal.token_id:
                    watcher = asyncio.create_task(watch(principal), name="session-guard")
            elif message["type"] == "websocket.close" and watcher is not None:
                watcher.cancel()

        async def guarded_receive() -> Message:
            nonlocal pending
            if not ended.is_set():
                pending = pending or asyncio.ensure_future(receive())
                stop: asyncio.Future[Any] = asyncio.ensure_future(ended.wait())
                await asyncio.wait({pending, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if pending.done():
                    message, pending = pending.result(), None
                    return message
            return {"type": "websocket.disconnect", "code": CLOSE_AUTH, "reason": why}

        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            if watcher is not None:
                watcher.cancel()
            if pending is not None:
                pending.cancel()


class AuditCalls:
    """Records every non-GET call under ``/api/``: who, from where, the route, the status code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or "/api/" not in scope.get("path", ""):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if not state.get(AUDITED_KEY):
                await _record(scope, state, status)


async def _record(scope: Scope, state: dict[str, Any], status: int) -> None:
    app = scope.get("app")
    trail = getattr(getattr(getattr(app, "state", None), "smallyi", None), "audit", None)
    if trail is None:
        return
    principal = state.get(PRINCIPAL_KEY)
    rule = state.get(RULE_KEY)
    route = scope.get("route")
    client = scope.get("client")
    result = "ok" if status < 400 else ("denied" if status in (401, 403) else "failed")
    detail: dict[str, Any] = {"status": status, "route": getattr(route, "path", "")}
    if isinstance(principal, Principal):
        detail["role"] = principal.role
    await trail.safe_record(
        "api.call", actor=principal.username if isinstance(principal, Principal) else "",
        client=client[0] if client else "", target=f"{scope['method']} {scope.get('path', '')}",
        result=result, perm="" if rule is None or isinstance(rule, Open) else rule.value, detail=detail,
        source="api",
    )
