"""ASGI middleware: one audit record per mutating API call, and security headers on every response.

Pure ASGI (no BaseHTTPMiddleware): streaming bodies and WebSockets pass through untouched.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smallyi.api.permissions import AUDITED_KEY, PRINCIPAL_KEY, RULE_KEY
from smallyi.auth.rbac import Open
from smallyi.auth.service import Principal

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: for API answers (JSON): nothing may be loaded or framed from them
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: for the console's own pages (the index sets its own, stricter for scripts)
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
#: the interactive API docs load Swagger UI from a CDN; they get no CSP rather than a broken page
_NO_CSP = ("/api/docs",)


class SecurityHeaders:
    """Adds CSP, nosniff, frame and referrer headers to each HTTP response that does not set them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

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
                if not path.startswith(_NO_CSP):
                    wanted.append((b"content-security-policy", csp.encode()))
                if path.startswith("/api/"):
                    wanted.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in wanted if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
