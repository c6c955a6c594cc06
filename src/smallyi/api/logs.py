"""Log follow over a WebSocket: the merged ``tail -F`` of a target, as ``small-yi logs`` prints it."""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from smallyi.api.deps import accept_websocket, client_address
from smallyi.api.permissions import Perm, needs
from smallyi.auth.caller import Caller
from smallyi.errors import Forbidden, SmallYiError
from smallyi.inventory.hosts import parse_label
from smallyi.inventory.selectors import Selector
from smallyi.logs.stream import start_follow
from smallyi.runtime import Runtime

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
    try:
        selector = Selector(
            group=q.get("group") or None,
            hosts=tuple(h for h in (q.get("hosts") or "").split(",") if h),
            labels=dict(parse_label(x) for x in q.getlist("label")),
        )
        lines = int(q.get("lines") or 10)
        follow = await start_follow(state.engine, state.inventory, state.audit,
                                    Caller.of(user, client=client_address(ws)), selector,
                                    files=q.getlist("file"), lines=lines, grep=q.get("grep") or None)
    except (SmallYiError, ValueError) as exc:
        msg = exc.message if isinstance(exc, SmallYiError) else f"lines: {exc}"
        await ws.send_text(json.dumps({"type": "error", "message": msg}))
        await ws.close(code=4403 if isinstance(exc, Forbidden) else 4422)
        return
    receiver = asyncio.create_task(_until_closed(ws))
    receiver.add_done_callback(lambda _: follow.stop())
    try:
        async for batch in follow.batches():
            await ws.send_text(json.dumps({"type": "events", "events": batch}))
        problem = follow.problem()
        if problem is not None:
            await ws.send_text(json.dumps({"type": "error", "message": problem}))
            await ws.close(code=4422)
    except WebSocketDisconnect:
        pass
    finally:
        receiver.cancel()
        await follow.close()


async def _until_closed(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()
