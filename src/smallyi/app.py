"""The FastAPI application: routers under ``/api/v1``, the console at ``/``, and the runtime's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from smallyi import __version__
from smallyi.api import auth, console_routes, errors, hosts, logs, tasks
from smallyi.config import Settings
from smallyi.runtime import Runtime
from smallyi.web import console


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """The app; it opens its own Runtime on start unless one is given (tests, embedding)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or await Runtime.open(settings, kind="server")
        app.state.smallyi = rt
        try:
            yield
        finally:
            if runtime is None:
                await rt.close()

    app = FastAPI(
        title="small-yi", version=__version__, lifespan=lifespan,
        docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json",
    )
    errors.install(app)
    api = APIRouter(prefix="/api/v1")
    api.include_router(auth.router)
    api.include_router(hosts.router)
    api.include_router(tasks.router)
    api.include_router(logs.router)
    api.include_router(console_routes.router)
    app.include_router(api)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness: answers without authentication, and without touching anything secret."""
        return {"status": "ok", "version": __version__}

    console.mount(app)
    return app
