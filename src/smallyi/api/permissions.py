"""The one access-control mechanism of the HTTP API: each route declares its rule, checked here.

A route declares what it needs in its decorator, once::

    @router.get("/hosts", dependencies=[needs(Perm.HOSTS_READ)])
    @router.websocket("/tasks/{task_id}/stream", dependencies=[needs(Perm.TASKS_READ)])
    @router.post("/auth/login", dependencies=[needs(PUBLIC)])

The dependency authenticates the caller (bearer header, ``bearer.`` WebSocket subprotocol, or the
session cookie with the CSRF header on writes and a same-origin check on WebSockets), checks the
rule against the caller's role, and leaves the principal for ``deps.User``. Group-scoped checks
(may this user run on *these* hosts?) happen where the hosts are known, through the same
``Access`` object (``principal.access.check_hosts``).

:data:`GUARD`, an app-wide dependency, refuses (403) any route that declares nothing, so forgetting
a declaration fails closed; :func:`enforce` logs such routes at start, and the route-by-role matrix
test fails on them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, params
from fastapi.params import Depends
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles

from smallyi import compat
from smallyi.auth.rbac import PUBLIC, SIGNED_IN, Open, Perm, Rule
from smallyi.auth.service import Principal
from smallyi.errors import AuthError, Forbidden

log = logging.getLogger(__name__)

SESSION_COOKIE = "smallyi_session"
#: cookie-authenticated writes must carry this header: a cross-site form cannot set it (CSRF guard)
CSRF_HEADER = "x-smallyi-csrf"
PRINCIPAL_KEY = "smallyi_principal"
#: set when a denial was already audited (the audit middleware then adds no second record)
AUDITED_KEY = "smallyi_audited"
RULE_KEY = "smallyi_rule"

__all__ = ["GUARD", "PUBLIC", "SIGNED_IN", "Perm", "Requirement", "all_routes", "declare_public", "enforce",
           "mark_audited", "needs", "rules_of"]


def _state(conn: HTTPConnection) -> dict[str, Any]:
    st: dict[str, Any] = conn.scope.setdefault("state", {})
    return st


def mark_audited(conn: HTTPConnection) -> None:
    """The handler has recorded this call itself (or chose not to): no ``api.call`` record for it."""
    _state(conn)[AUDITED_KEY] = True


def token_from(conn: HTTPConnection) -> tuple[str | None, bool]:
    """(token, came_from_cookie): the bearer header, a ``bearer.`` subprotocol, or the session cookie."""
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if conn.scope["type"] == "websocket":
        for proto in conn.headers.get("sec-websocket-protocol", "").split(","):
            proto = proto.strip()
            if proto.startswith("bearer."):
                return proto[7:], False
    cookie = conn.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


def _same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    if not origin:
        return True  # not a browser: cookies are then the caller's own
    return urlsplit(origin).netloc.lower() == conn.headers.get("host", "").lower()


async def authenticate(conn: HTTPConnection) -> Principal:
    """The caller, once per request (cached in the request state); AuthError when not logged in."""
    st = _state(conn)
    cached = st.get(PRINCIPAL_KEY)
    if isinstance(cached, Principal):
        return cached
    token, from_cookie = token_from(conn)
    if not token:
        raise AuthError("not logged in: send 'Authorization: Bearer <token>' (POST /api/v1/auth/login gives one)")
    if from_cookie:
        if conn.scope["type"] == "websocket" and not _same_origin(conn):
            raise AuthError("a cookie-authenticated WebSocket must come from this site's own pages")
        if conn.scope["type"] == "http" and conn.scope["method"] not in ("GET", "HEAD", "OPTIONS") \
                and CSRF_HEADER not in conn.headers:
            raise AuthError(f"cookie-authenticated writes need the {CSRF_HEADER} header")
    principal: Principal = await conn.app.state.smallyi.auth.authenticate(token)
    st[PRINCIPAL_KEY] = principal
    return principal


class Requirement:
    """A route's declared rule, as a FastAPI dependency (see the module docstring)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def __repr__(self) -> str:
        return f"needs({self.rule.value})"

    async def __call__(self, conn: HTTPConnection) -> Principal | None:
        _state(conn)[RULE_KEY] = self.rule
        if self.rule is PUBLIC:
            return None
        websocket = conn.scope["type"] == "websocket"
        try:
            principal = await authenticate(conn)
            principal.access.check(self.rule)
        except Forbidden as exc:
            await _audit_denial(conn, self.rule, exc.message)
            if websocket:
                raise WebSocketException(code=4403, reason=exc.message[:120]) from None
            raise
        except AuthError as exc:
            if websocket:
                raise WebSocketException(code=4401, reason=exc.message[:120]) from None
            raise
        return principal


async def _audit_denial(conn: HTTPConnection, rule: Rule, message: str) -> None:
    st = _state(conn)
    principal = st.get(PRINCIPAL_KEY)
    trail = getattr(conn.app.state.smallyi, "audit", None)
    if trail is None or not isinstance(principal, Principal):
        return
    st[AUDITED_KEY] = True
    method = conn.scope.get("method", "WS")
    await trail.safe_record(
        "access.denied", actor=principal.username, client=conn.client.host if conn.client else "",
        target=f"{method} {conn.url.path}", result="denied", perm=rule.value, source="api",
        detail={"role": principal.role, "reason": message},
    )


_CACHE: dict[Rule, Requirement] = {}


def needs(rule: Rule) -> params.Depends:
    """The declaration a route puts in ``dependencies=[...]``: the permission it needs, or PUBLIC/SIGNED_IN."""
    req = _CACHE.setdefault(rule, Requirement(rule))
    return Depends(req)


def _walk(dependant: Any) -> Iterator[Requirement]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Requirement):
            yield sub.call
        yield from _walk(sub)


def rules_of(route: BaseRoute) -> tuple[Rule, ...]:
    """The rules a route declared (empty: none, and the route is refused)."""
    declared = getattr(route, RULE_KEY, None)
    if isinstance(declared, Perm | Open):
        return (declared,)
    if isinstance(route, APIRoute | APIWebSocketRoute):
        return tuple(r.rule for r in _walk(route.dependant))
    if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
        return (PUBLIC,)  # static files: the console's own code, public by nature
    return ()


def declare(route: BaseRoute, rule: Rule) -> None:
    """For routes that cannot take ``needs(...)``: the framework's docs, and the console's page (``web``
    may not import ``api``). Only PUBLIC is checked this way: anything else must use ``needs``."""
    if rule is not PUBLIC:
        raise ValueError("declare() is for public routes; use dependencies=[needs(...)] for the rest")
    setattr(route, RULE_KEY, rule)


def declare_public(app: FastAPI, *paths: str) -> None:
    for path, route in all_routes(app):
        if path in paths:
            declare(route, PUBLIC)


def _methods(route: BaseRoute) -> str:
    if isinstance(route, WebSocketRoute):
        return "WS"
    return ",".join(sorted(getattr(route, "methods", None) or ["*"]))


async def guard(conn: HTTPConnection) -> None:
    """App-wide dependency: a route that declares no rule is refused, whoever calls (fails closed)."""
    route = conn.scope.get("route")
    if route is None or rules_of(route):
        return
    message = "this route declares no permission, so it is refused; its author must add needs(...)"
    if conn.scope["type"] == "websocket":
        raise WebSocketException(code=4403, reason=message[:120])
    raise Forbidden(message)


#: put in ``FastAPI(dependencies=[GUARD])``: applies :func:`guard` to every route of the app
GUARD = Depends(guard)


def all_routes(app: FastAPI) -> list[tuple[str, BaseRoute]]:
    """(full path, route) for every route of the app, routers included (FastAPI may keep them nested)."""
    return compat.app_routes(app)


def enforce(app: FastAPI) -> list[str]:
    """Declare the framework's docs public and log every route without a rule (the guard refuses them)."""
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    declare_public(app, *(p for p in docs if p))
    missing = [f"{_methods(r)} {path}" for path, r in all_routes(app) if not rules_of(r)]
    for what in missing:
        log.error("route %s declares no permission: it is refused until it does", what)
    return missing
