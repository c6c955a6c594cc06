"""One JSON error shape everywhere: ``{"error": {"code", "message", "field"?}}``.

The exception families of ``smallyi.errors`` map to HTTP codes here, and only here.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from smallyi import errors

log = logging.getLogger(__name__)

STATUS: list[tuple[type[errors.SmallYiError], int]] = [
    (errors.Throttled, 429),
    (errors.Forbidden, 403),
    (errors.AuthError, 401),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.InputError, 422),
    (errors.ConfigError, 422),
    (errors.StorageError, 503),
]


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if field:
        err["field"] = field
    return {"error": err}


def status_of(exc: errors.SmallYiError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.SmallYiError)
    async def _ours(_req: Request, exc: errors.SmallYiError) -> JSONResponse:
        status = status_of(exc)
        headers = {}
        if isinstance(exc, errors.Throttled):
            headers["Retry-After"] = str(int(exc.retry_after) + 1)
        elif status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(error_body(exc.code, exc.message, exc.field), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return JSONResponse(
            error_body("invalid_input", f"{field}: {msg}" if field else msg, field), 422
        )

    @app.exception_handler(HTTPException)
    async def _http(_req: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(OverflowError)
    async def _overflow(_req: Request, exc: OverflowError) -> JSONResponse:
        # a number too large for the database (ids are 64-bit): bad input, not a server fault
        return JSONResponse(error_body("invalid_input", "a number in the request is out of range"), 422)

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body("internal_error", "internal error; see the server log"), 500)
