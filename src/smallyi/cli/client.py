"""The CLI as a client of a running server (``--server URL --token T``): the same output, remotely."""

from __future__ import annotations

import json
from typing import Any

import httpx

from smallyi.cli.common import StreamFormat
from smallyi.cli.termsafe import Show
from smallyi.errors import AuthError, InputError, NotFound, SmallYiError


class Client:
    """A thin HTTP client that turns the API's error shape back into small-yi errors."""

    def __init__(self, server: str, token: str | None) -> None:
        if not token:
            raise AuthError("--server needs a token: pass --token or set SMALLYI_TOKEN "
                            "(create one with POST /api/v1/auth/tokens or in the console)")
        self.base = server.rstrip("/")
        self.token = token
        self.http = httpx.AsyncClient(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = await self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise SmallYiError(f"cannot reach the server at {self.base}: {exc}") from None
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                msg, field = err["message"], err.get("field")
            except (ValueError, KeyError, TypeError):
                msg, field = r.text[:200], None
            cls = {401: AuthError, 403: AuthError, 404: NotFound, 422: InputError}.get(r.status_code, SmallYiError)
            raise cls(f"server: {msg}", field=field) if cls is not AuthError else cls(f"server: {msg}")
        return r.json() if r.content else None

    def ws_url(self, path: str) -> str:
        return ("wss:" if self.base.startswith("https") else "ws:") + self.base.split(":", 1)[1] + path

    async def stream(self, task_id: int, on_event: Any, after: int = 0) -> None:
        """Follow a task's events until it ends, reconnecting from the last sequence on a drop."""
        await self.follow(f"/api/v1/tasks/{task_id}/stream", on_event, what=f"task {task_id}", after=after)

    async def follow(self, path: str, on_event: Any, *, what: str, after: int = 0) -> dict[str, Any]:
        """Follow a stream of ``{"type": "events", "events": [...]}`` messages (tasks, SOP runs) until its
        ``end`` message, which is returned; a drop reconnects with ``?after=<last seq>``: nothing missed or doubled."""
        import asyncio

        import websockets

        last, tries = after, 0
        while True:
            try:
                async with websockets.connect(
                    self.ws_url(f"{path}?after={last}"),
                    subprotocols=[websockets.Subprotocol(f"bearer.{self.token}")],
                    max_size=None,
                ) as ws:
                    tries = 0
                    async for raw in ws:
                        msg = json.loads(raw)
                        if msg["type"] == "end":
                            return dict(msg)
                        for ev in msg["events"]:
                            if ev["seq"] > last:
                                last = ev["seq"]
                                on_event(ev)
            except (OSError, websockets.ConnectionClosedError, websockets.InvalidHandshake) as exc:
                tries += 1
                if tries > 5:
                    raise SmallYiError(f"lost the stream of {what}: {exc}") from None
                await asyncio.sleep(min(0.2 * 2**tries, 3))


async def remote_run(server: str, token: str | None, body: dict[str, Any], *, output: StreamFormat, quiet: bool,
                     show: Show = Show.SAFE) -> dict[str, int]:
    """Submit the task, stream its output back, print the summary (or every result, or ndjson events);
    returns its hosts counted by status."""
    from smallyi.cli import ndjson
    from smallyi.cli.common import print_json
    from smallyi.cli.render import LivePrinter, count_statuses, summary

    async with Client(server, token) as c:
        task = await c.call("POST", "/api/v1/tasks", json={k: v for k, v in body.items() if v is not None})
        if "approval" in task:  # the policy holds it for a second person (202)
            raise SmallYiError(f"server: {task['message']}")
        if task.get("queue_position") and output is StreamFormat.text:
            from smallyi.cli.common import err_console

            err_console.print(f"task {task['id']} queued (queue position {task['queue_position']}): "
                              "waiting for free session slots (execution.max_concurrency)")
        if output is StreamFormat.ndjson:
            from smallyi.cli.exits import exit_status

            lines = ndjson.Printer(quiet=quiet)
            lines.begin(task)
            await c.stream(task["id"], lines)
            brief = await c.call("GET", f"/api/v1/tasks/{task['id']}/summary", params={"results": "false"})
            counts = dict(brief["counts"])
            lines.summary(brief["task"], counts, brief["reasons"], exit_status=exit_status(counts))
            return counts
        printer = LivePrinter(task["host_count"], quiet=quiet or output is StreamFormat.json, show=show)
        try:
            await c.stream(task["id"], printer)
        except BaseException:
            printer.finish()
            raise
        printer.finish()
        if output is StreamFormat.text:  # the counts and the distinct reasons, not every host's output
            brief = await c.call("GET", f"/api/v1/tasks/{task['id']}/summary", params={"results": "false"})
            summary(brief["task"], brief["counts"], brief["reasons"])
            return dict(brief["counts"])
        task = await c.call("GET", f"/api/v1/tasks/{task['id']}")
        results = (await c.call("GET", f"/api/v1/tasks/{task['id']}/results", params={"limit": 1000}))["items"]
        total = task["host_count"]
        offset = len(results)
        while offset < total:
            page = (await c.call("GET", f"/api/v1/tasks/{task['id']}/results",
                                 params={"limit": 1000, "offset": offset}))["items"]
            if not page:
                break
            results += page
            offset += len(page)
    print_json({"task": task, "results": results})
    return count_statuses(results)
