"""The FastAPI application: routers under ``/api/v1``, the console at ``/``, and the runtime's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

from smallyi import __version__
from smallyi.api import admin as admin_routes
from smallyi.api import (
    approvals,
    audit,
    auth,
    errors,
    gitops,
    hosts,
    logs,
    overview,
    preferences,
    security,
    tasks,
    terminal,
)
from smallyi.api import sop as sop_routes
from smallyi.api.limits import BodyLimit
from smallyi.api.middleware import AuditCalls, SecurityHeaders, SessionGuard
from smallyi.api.permissions import GUARD, PUBLIC, declare_public, enforce, needs
from smallyi.api.schemas import COMMON_ERRORS, Answer
from smallyi.config import Settings
from smallyi.execution.connectors.base import Connector
from smallyi.runtime import Runtime
from smallyi.web import console


class Health(Answer):
    status: str
    version: str


API_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>small-yi API</title>
<link rel="stylesheet" href="../static/vendor/swagger-ui/swagger-ui.css">
<link rel="icon" href="../static/vendor/swagger-ui/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="../static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="../static/js/api-docs.js"></script>
</body>
</html>
"""


def create_app(settings: Settings, *, runtime: Runtime | None = None,
               connectors: Mapping[str, Connector] | None = None) -> FastAPI:
    """The app; it opens its own Runtime on start unless one is given (tests, embedding).

    ``connectors`` go to the Runtime it opens (tests: a fake connector, so nothing really runs).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or await Runtime.open(settings, kind="server", connectors=connectors)
        app.state.smallyi = rt
        try:
            yield
        finally:
            if runtime is None:
                await rt.close()

    app = FastAPI(
        title="small-yi", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
        dependencies=[GUARD],
    )
    errors.install(app)
    api = APIRouter(prefix="/api/v1", responses=COMMON_ERRORS)
    api.include_router(auth.router)
    api.include_router(hosts.router)
    api.include_router(tasks.router)
    api.include_router(logs.router)
    api.include_router(terminal.router)
    api.include_router(preferences.router)
    api.include_router(overview.router)
    api.include_router(audit.router)
    api.include_router(security.router)
    api.include_router(admin_routes.router)  # reloading the config
    api.include_router(approvals.router)
    api.include_router(gitops.router)
    api.include_router(sop_routes.router)  # SOPs, runs, approvals, tickets; schedules; notifications
    app.include_router(api)

    @app.get("/healthz", tags=["health"], dependencies=[needs(PUBLIC)], response_model=Health)
    async def healthz() -> dict[str, Any]:
        """Liveness: answers without authentication, and without touching anything secret."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/docs", include_in_schema=False, dependencies=[needs(PUBLIC)])
    async def api_docs() -> HTMLResponse:
        """Swagger UI from the package's own files (vendored from npm): works offline, and under the console's
        Content-Security-Policy (no inline script). Relative URLs, so it works under nginx's path prefix."""
        return HTMLResponse(API_DOCS_PAGE)

    console.mount(app)
    declare_public(app, "/")  # the console's page (static, like /static)
    # every route must declare its permission: those that do not are refused (and logged) here
    enforce(app)
    # innermost: its 413 is audited and gets the security headers like any answer
    app.add_middleware(BodyLimit, default=settings.server.max_body, routes={
        "/api/v1/hosts/import": hosts.MAX_IMPORT_BYTES, "/api/v1/gitops/webhook": gitops.MAX_WEBHOOK_BYTES})
    app.add_middleware(AuditCalls)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(SessionGuard, interval=settings.auth.session_recheck)
    return app
