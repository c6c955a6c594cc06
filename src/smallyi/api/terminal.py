"""The web terminal: a shell on a host over a WebSocket, and the recorded sessions.

``WS /api/v1/terminal/connect?host=NAME&cols=C&rows=R[&idle=SECONDS]`` (authenticate like the task
stream: subprotocol ``bearer.<token>``, header or session cookie). Client messages:
``{"type": "input", "data": "ls\\r"}``, ``{"type": "resize", "cols": 120, "rows": 40}``,
``{"type": "ping"}``. Server messages: ``{"type": "ready", "session": {...}}``, then
``{"type": "output", "data": "..."}`` (and ``{"type": "notice", "message"}`` when the recording reaches
``terminal.max_recording``), and last ``{"type": "closed", "status", "reason"}`` or
``{"type": "error", "message"}``. A session without input for ``idle`` seconds (at most
``terminal.idle_timeout``, 15 minutes by default) is closed.

The built-in ``local`` host's terminal is a shell on the server as the server's user: it needs
``terminal.local`` (on by default) and terminal.open granted on group ``local`` itself (the groups the
host was also put in do not count); see docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from smallyi.api.deps import CLOSE_AUTH, Paging, User, accept_websocket, client_address, listing
from smallyi.api.guards import allow_hosts, terminal_guard
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import Page
from smallyi.api.schemas.terminal import SessionOut
from smallyi.auth.service import Principal
from smallyi.errors import Forbidden, NotFound, SmallYiError
from smallyi.inventory.hosts import HostSpec
from smallyi.runtime import Runtime
from smallyi.storage.models import TerminalSession
from smallyi.terminal.line_guard import LineGuard
from smallyi.terminal.sessions import SessionFilter, TerminalRun, TerminalService, session_dict

router = APIRouter(prefix="/terminal", tags=["terminal"])

_LOCK = asyncio.Lock()


async def terminal_service(app: FastAPI) -> TerminalService:
    """The app's terminal service, made on first use (and stale sessions marked interrupted then)."""
    async with _LOCK:
        svc: TerminalService | None = getattr(app.state, "smallyi_terminals", None)
        if svc is None:
            rt: Runtime = app.state.smallyi
            cfg = rt.settings.terminal
            svc = TerminalService(rt.db, rt.inventory, rt.pty_connector(), idle_timeout=cfg.idle_timeout,
                                  recording_limit=cfg.max_recording)
            await svc.recover()
            app.state.smallyi_terminals = svc
            rt.followers.append(_follow(svc))
        return svc


def _follow(svc: TerminalService) -> Callable[[Runtime], None]:
    """After a reload, new sessions use the config's SSH settings and terminal limits; open ones go on."""
    def follow(rt: Runtime) -> None:
        cfg = rt.settings.terminal
        svc.connector, svc.idle_timeout, svc.recording_limit = rt.pty_connector(), cfg.idle_timeout, cfg.max_recording

    return follow


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _idle(value: str | None, most: float) -> float:
    """The idle timeout a client asked for (seconds), never above ``most`` nor below one second."""
    try:
        asked = float(value) if value else most
    except ValueError:
        return most
    return min(max(asked, 1.0), most) if asked == asked else most


def _checked_host(rt: Runtime, host: HostSpec) -> HostSpec:
    """The host, unless it is the server itself and its terminal is turned off.

    (Its permission counts on group ``local`` only: ``HostSpec.permission_groups``.)
    """
    if host.connector == "local" and not rt.settings.terminal.local:
        raise Forbidden(f"the terminal of host {host.name} (a shell on the server) is turned off "
                        "(terminal.local: false in the config)")
    return host


@router.websocket("/connect", dependencies=[needs(Perm.TERMINAL_OPEN)])
async def connect(ws: WebSocket) -> None:
    """A recorded login shell on ``host`` (see the module docstring for the messages)."""
    user = await accept_websocket(ws)
    if user is None:
        return
    q = ws.query_params
    svc = await terminal_service(ws.app)
    idle = _idle(q.get("idle"), svc.idle_timeout)
    rt: Runtime = ws.app.state.smallyi

    async def failed(session_id: int, reason: str) -> None:
        await rt.audit.safe_record("terminal.open", actor=user.username, client=client_address(ws),
                                   target=host.name, result="failed", perm=Perm.TERMINAL_OPEN.value, source="api",
                                   detail={"session": session_id, "reason": reason})

    try:
        host = await rt.inventory.get_host(q.get("host") or "")
        await allow_hosts(rt, user, Perm.TERMINAL_OPEN, [_checked_host(rt, host)], client=client_address(ws),
                          what="terminal")
        run = await svc.open(q.get("host") or "", user=user.username, client=client_address(ws),
                             cols=_int(q.get("cols"), 80), rows=_int(q.get("rows"), 24), failed=failed)
    except SmallYiError as exc:
        with contextlib.suppress(Exception):
            await ws.send_text(json.dumps({"type": "error", "message": exc.message}))
            await ws.close(code=4403 if isinstance(exc, Forbidden) else 4422)
        return
    await rt.audit.record("terminal.open", actor=user.username, client=client_address(ws), target=host.name,
                          perm=Perm.TERMINAL_OPEN.value, source="api", detail={"session": run.id})
    session = session_dict(await svc.get(run.id))
    await ws.send_text(json.dumps({"type": "ready", "session": session, "idle_timeout": idle}, default=str))
    async def refused(line: str, why: str) -> None:
        await rt.audit.safe_record("policy.deny", actor=user.username, client=client_address(ws), target=host.name,
                                   result="denied", perm=Perm.TERMINAL_OPEN.value, source="api",
                                   detail={"kind": "terminal", "session": run.id, "command": line, "reason": why})

    status, reason = await _bridge(ws, run, idle, terminal_guard(rt, user, host), refused)
    reason = await run.close(status, reason, shell_ended=not reason)
    await rt.audit.safe_record("terminal.close", actor=user.username, client=client_address(ws), target=host.name,
                               result=status, source="api", detail={"session": run.id, "reason": reason})
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"type": "closed", "status": status, "reason": reason}))
        await ws.close()


async def _bridge(ws: WebSocket, run: TerminalRun, idle: float, guard: LineGuard | None = None,
                  refused: Callable[[str, str], Awaitable[None]] | None = None) -> tuple[str, str]:
    """Shuttle bytes both ways until the shell ends, the browser leaves or nobody types for ``idle``.

    A line the guard refuses is not sent; the user is told why and ``refused(line, why)`` audits it.
    """
    loop = asyncio.get_running_loop()
    last_input = loop.time()

    async def out() -> None:
        while (text := await run.read()) is not None:
            if text:
                await ws.send_text(json.dumps({"type": "output", "data": text}))
            notice = run.take_notice()
            if notice:
                await ws.send_text(json.dumps({"type": "notice", "message": notice}))

    async def inp() -> str:
        nonlocal last_input
        while True:
            raw = await ws.receive_text()
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "input" and isinstance(msg.get("data"), str):
                last_input = loop.time()
                data, refusal = guard.feed(msg["data"]) if guard else (msg["data"], None)
                run.write(data)
                if refusal and guard is not None:  # the policy's guard against mistakes (not a security boundary)
                    await ws.send_text(json.dumps({"type": "output", "data": f"\r\n[small-yi] {refusal}\r\n"}))
                    if refused is not None:
                        await refused(guard.refused_line, refusal)
            elif kind == "close":
                return "closed by the user"
            elif kind == "resize":
                run.resize(_int(str(msg.get("cols")), 80), _int(str(msg.get("rows")), 24))

    async def watch() -> None:
        while True:
            left = last_input + idle - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 5.0))

    tasks = {"out": asyncio.create_task(out()), "in": asyncio.create_task(inp()),
             "idle": asyncio.create_task(watch())}
    try:
        done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks.values():
            t.cancel()
        for t in tasks.values():
            with contextlib.suppress(BaseException):
                await t
    if tasks["idle"] in done:
        return "idle", f"no input for {idle:g}s: closed by the idle timeout"
    if tasks["out"] in done:
        return "closed", ""
    exc = tasks["in"].exception() if not tasks["in"].cancelled() else None
    if exc is None and tasks["in"] in done:
        return "closed", str(tasks["in"].result())
    if isinstance(exc, WebSocketDisconnect) and exc.code == CLOSE_AUTH:
        return "closed", f"the login ended: {exc.reason}" if exc.reason else "the login ended"
    if exc is None or isinstance(exc, WebSocketDisconnect):
        return "closed", "the browser disconnected"
    return "failed", f"internal error: {type(exc).__name__}"


@router.get("/sessions", response_model=Page[SessionOut], dependencies=[needs(Perm.TERMINAL_READ)])
async def list_sessions(user: User, request: Request, page: Paging, host: str | None = None,
                        username: str | None = None) -> dict[str, Any]:
    """Recorded terminal sessions, newest first, filtered by host and user."""
    svc = await terminal_service(request.app)
    if not user.access.allows(Perm.TERMINAL_AUDIT):
        username = user.username  # recordings hold what others typed: one's own only, unless auditing
    rows, total = await svc.list(SessionFilter(host=host, user=username), limit=page.limit, offset=page.offset)
    return listing([session_dict(r) for r in rows], total)


async def _own(svc: TerminalService, session_id: int, user: Principal) -> TerminalSession:
    """The session, if the caller may see it (their own, or any with terminal.audit)."""
    row = await svc.get(session_id)
    if row.username != user.username and not user.access.allows(Perm.TERMINAL_AUDIT):
        raise NotFound(f"terminal session {session_id} not found")
    return row


@router.get("/sessions/{session_id}", response_model=SessionOut, dependencies=[needs(Perm.TERMINAL_READ)])
async def get_session(session_id: int, user: User, request: Request) -> dict[str, Any]:
    svc = await terminal_service(request.app)
    return session_dict(await _own(svc, session_id, user))


@router.get("/sessions/{session_id}/recording", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-asciicast": {}},
                             "description": "an asciicast v2 file"}},
            dependencies=[needs(Perm.TERMINAL_READ)])
async def recording(session_id: int, user: User, request: Request) -> StreamingResponse:
    """The session's recording as an asciicast v2 file (plays in ``asciinema play`` too)."""
    svc = await terminal_service(request.app)
    await _own(svc, session_id, user)
    rt: Runtime = request.app.state.smallyi
    await rt.audit.record("terminal.replay", actor=user.username, client=client_address(request),
                          target=f"terminal session {session_id}", perm=Perm.TERMINAL_READ.value, source="api")

    async def body() -> AsyncIterator[bytes]:
        async for text in svc.recording(session_id):
            yield text.encode()

    return StreamingResponse(body(), media_type="application/x-asciicast", headers={
        "Content-Disposition": f'attachment; filename="terminal-{session_id}.cast"',
        "Cache-Control": "no-store",
    })

