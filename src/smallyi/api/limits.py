"""The request body limit, enforced while the body streams in (pure ASGI middleware).

A declared ``Content-Length`` over the limit is answered 413 before a byte of the body is read; a body
without one (chunked) is counted chunk by chunk and answered 413 as soon as it passes the limit, so the
server never holds more than the limit plus one chunk of it. Without this, FastAPI reads a whole body into
memory before any route (or the login's throttle) can look at it.

After the 413 the route sees :class:`~smallyi.errors.TooLarge` from ``receive``, and whatever it answers
is dropped; the server reads and discards the rest of the body without keeping it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smallyi.api.errors import error_body, status_of
from smallyi.durations import format_size
from smallyi.errors import TooLarge


class BodyLimit:
    """At most ``default`` bytes of request body, or ``routes[path]`` for the few routes that take files."""

    def __init__(self, app: ASGIApp, *, default: int, routes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.routes = {path: max(size, default) for path, size in (routes or {}).items()}

    def limit_for(self, scope: Scope) -> int:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        return self.routes.get(path, self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        error = TooLarge(f"the request body is larger than {format_size(limit)}"
                         + (" (server.max_body)" if limit == self.default else " for this route")
                         + "; send less, or split it into several requests", field="body")
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, error)
            return
        seen = 0
        refused = started = False

        async def counted_receive() -> Message:
            nonlocal seen, refused
            if refused:
                raise error
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    if not started:  # (a route answering while it reads: its answer stands, cut short)
                        await _refuse(send, error)
                    raise error
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not refused:  # once refused, the 413 is the answer
                started = True
                await send(message)

        await self.app(scope, counted_receive, guarded_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses it before us
    return None


async def _refuse(send: Send, error: TooLarge) -> None:
    body = json.dumps(error_body(error.code, error.message, error.field)).encode()
    await send({"type": "http.response.start", "status": status_of(error), "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
