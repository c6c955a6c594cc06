"""Log follow over a WebSocket: the merged ``tail -F`` of a target, as ``small-yi logs`` prints it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from smallyi.api.deps import accept_websocket, client_address
from smallyi.api.guards import allow_hosts
from smallyi.api.permissions import Perm, needs
from smallyi.errors import Forbidden, SmallYiError
from smallyi.inventory.hosts import parse_label
from smallyi.inventory.selectors import Selector
from smallyi.runtime import Runtime
from smallyi.tasks.logs import follow

router = APIRouter(tags=["logs"])


@router.websocket("/logs/stream", dependencies=[needs(Perm.LOGS_FOLLOW)])
async def logs_stream(ws: WebSocket) -> None:
    """Query: ``group``, ``hosts`` (comma-separated), ``label`` (k=v, repeatable), ``file`` (repeatable),
    ``grep``, ``lines``. Messages: ``{"type": "events", "events": [...]}``; an ``{"type": "error"}``
    message then close for bad input. Runs until the client disconnects.
    """
    state: Runtime = ws.app.state.smallyi
    q = ws.query_params
    user = await accept_websocket(ws)
    if user is None:
        return
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
    dropped = 0

    def on_event(w: dict[str, Any]) -> None:
        nonlocal dropped
        try:
            queue.put_nowait(w)
        except asyncio.QueueFull:
            dropped += 1

    cancel = asyncio.Event()
    try:
        selector = Selector(
            group=q.get("group") or None,
            hosts=tuple(h for h in (q.get("hosts") or "").split(",") if h),
            labels=dict(parse_label(x) for x in q.getlist("label")),
        )
        lines = int(q.get("lines") or 10)
        hosts = await state.inventory.resolve(selector)
        await allow_hosts(state, user, Perm.LOGS_FOLLOW, hosts, client=client_address(ws), what="logs")
        await state.audit.record("logs.follow", actor=user.username, client=client_address(ws),
                                 target=selector.describe(), perm=Perm.LOGS_FOLLOW.value, source="api",
                                 detail={"files": q.getlist("file"), "hosts": len(hosts)})
        runner = asyncio.create_task(follow(
            state.engine, state.inventory, selector, files=q.getlist("file"), lines=lines,
            grep=q.get("grep") or None, on_event=on_event, cancel=cancel, user=user.username,
        ))
    except (SmallYiError, ValueError) as exc:
        msg = exc.message if isinstance(exc, SmallYiError) else f"lines: {exc}"
        await ws.send_text(json.dumps({"type": "error", "message": msg}))
        await ws.close(code=4403 if isinstance(exc, Forbidden) else 4422)
        return
    receiver = asyncio.create_task(_until_closed(ws))
    try:
        while not runner.done() and not receiver.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, runner, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                continue
            batch = [getter.result()]
            while not queue.empty() and len(batch) < 500:
                batch.append(queue.get_nowait())
            if dropped:
                batch.append({"host": "", "stream": "stderr", "text": f"[small-yi] {dropped} lines dropped: client too slow"})
                dropped = 0
            await ws.send_text(json.dumps({"type": "events", "events": batch}))
        if runner.done() and runner.exception() is not None:
            failure = runner.exception()
            msg = failure.message if isinstance(failure, SmallYiError) else "internal error; see the server log"
            await ws.send_text(json.dumps({"type": "error", "message": msg}))
            await ws.close(code=4422)
    except WebSocketDisconnect:
        pass
    finally:
        cancel.set()
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(runner, 10)


async def _until_closed(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()
