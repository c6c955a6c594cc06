"""Every JSON route of the API names a response model, so /openapi.json describes what it answers.

The check is a function of the app's routes; it is run on the real app and on small apps that break
each rule, so it cannot pass by looking at nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from smallyi.api.permissions import all_routes
from smallyi.api.schemas import Answer, Page
from smallyi.app import create_app
from smallyi.config import parse_settings


def _described(model: Any) -> bool:
    """A pydantic model, or a list of one: not ``dict[str, Any]`` inferred from an annotation."""
    if get_origin(model) is list:
        (model,) = get_args(model)
    return isinstance(model, type) and issubclass(model, BaseModel)


def undescribed(app: FastAPI) -> list[str]:
    """``METHOD path`` of each documented route that answers JSON without a model describing it.

    Left alone: 204 routes (no body), streams and pages (a StreamingResponse or HTMLResponse class).
    """
    out = []
    for path, route in all_routes(app):
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        if route.status_code == 204:
            continue
        cls = route.response_class
        if isinstance(cls, type) and issubclass(cls, (StreamingResponse, HTMLResponse)):
            continue
        if not _described(route.response_model):
            out.extend(f"{m} {path}" for m in sorted(route.methods))
    return out


def test_every_api_route_names_its_response_model(tmp_path: Path) -> None:
    cfg = parse_settings(f"database:\n  source: {tmp_path}/x.db\nsecrets:\n  key_file: {tmp_path}/k\n",
                         base_dir=tmp_path)
    app = create_app(cfg)
    missing = undescribed(app)
    assert not missing, "routes without a response_model:\n" + "\n".join(missing)
    schema = app.openapi()
    ops = [op for item in schema["paths"].values() for op in item.values()]
    assert len(ops) > 80  # the real app, not an empty one


class Thing(Answer):
    name: str


def test_the_check_names_a_route_answering_a_bare_dict() -> None:
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, Any]:
        return {}

    @app.get("/typed", response_model=Thing)
    async def typed() -> dict[str, Any]:
        return {"name": "x"}

    @app.get("/paged", response_model=Page[Thing])
    async def paged() -> dict[str, Any]:
        return {"items": [], "total": 0}

    @app.get("/many", response_model=list[Thing])
    async def many() -> list[dict[str, Any]]:
        return []

    @app.delete("/gone", status_code=204)
    async def gone() -> Response:
        return Response(status_code=204)

    @app.get("/stream", response_class=StreamingResponse)
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter([b""]))

    assert undescribed(app) == ["GET /bare"]


@pytest.mark.skipif(os.environ.get("SMALLYI_STRICT_ANSWERS") in (None, "", "0"), reason="strict mode is off")
def test_strict_mode_refuses_an_undeclared_key() -> None:
    """Under the tests a model that drifts from its route fails loudly (a 500), not silently."""
    from support import starlette_test_client

    TestClient = starlette_test_client()
    app = FastAPI()

    @app.get("/drift", response_model=Thing)
    async def drift() -> dict[str, Any]:
        return {"name": "x", "undeclared": 1}

    assert TestClient(app, raise_server_exceptions=False).get("/drift").status_code == 500
