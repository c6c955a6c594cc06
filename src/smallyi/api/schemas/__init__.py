"""What each route answers, as pydantic models: ``/openapi.json`` describes real responses.

One module per domain (``schemas/hosts.py`` for the hosts routes ...); a route names its model with
``response_model=`` and FastAPI checks every answer against it on the way out.

Strictness: the test suite sets ``SMALLYI_STRICT_ANSWERS=1``; then a key a route answers that its model
does not declare is an error (a 500 naming the key in the server log), so a model that drifts from its
route fails the tests. A server started without it lets such keys through unchanged: a declaration
missed by the tests costs a user neither the field nor the request.
"""

from __future__ import annotations

import os
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

#: set (to anything but "" or "0") by the tests: undeclared keys in an answer are an error
STRICT = os.environ.get("SMALLYI_STRICT_ANSWERS", "") not in ("", "0")


class Answer(BaseModel):
    """The base of every response model."""

    model_config = ConfigDict(extra="forbid" if STRICT else "allow")


T = TypeVar("T")


class Page(Answer, Generic[T]):
    """The one list shape: a page of ``items`` and the ``total`` that match."""

    items: list[T]
    total: int = Field(description="how many match, over every page")


class ErrorDetail(Answer):
    code: str = Field(description="a stable, machine-readable name: not_found, forbidden, invalid_input ...")
    message: str = Field(description="what is wrong, for a person")
    field: str | None = Field(default=None, description="the request field at fault, when there is one")


class ErrorOut(Answer):
    """Every refusal and error: ``{"error": {"code", "message", "field"?}}``."""

    error: ErrorDetail


#: the refusals any authenticated API route may answer, declared once for every route
COMMON_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "no valid token or session"},
    403: {"model": ErrorOut, "description": "the caller lacks a permission, a group or a CSRF token"},
    422: {"model": ErrorOut, "description": "the request is invalid; `field` names what"},
}
