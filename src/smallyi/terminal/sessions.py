"""Web-terminal sessions: open a recorded shell on a host, list sessions, read back their recordings.

Every session is a ``terminal_sessions`` row (who, which host, from which address, when, how it
ended) written before the shell starts, and a recording in asciicast v2 kept in ``terminal_chunks``,
flushed about once a second. These rows are the hook for the audit trail; ``input_listeners`` are
called with every piece of input a user types (nothing listens yet: the security work will).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from smallyi.durations import format_size
from smallyi.errors import NotFound
from smallyi.execution.connectors.pty import PtyConnector, Shell, clamp_size
from smallyi.inventory.service import InventoryService
from smallyi.runners import ProcessState, process_state, runner_id
from smallyi.storage.db import Database
from smallyi.storage.models import TerminalChunk, TerminalSession, utcnow
from smallyi.terminal.recording import DEFAULT_LIMIT, AsciicastRecorder
from smallyi.timestamps import iso

log = logging.getLogger(__name__)

#: a session nobody typed into for this long is closed (``terminal.idle_timeout``; a client may ask for less)
IDLE_TIMEOUT = 15 * 60.0
FLUSH_INTERVAL = 1.0

InputListener = Callable[[int, str, bytes], None]


@dataclass(frozen=True, slots=True)
class SessionFilter:
    host: str | None = None
    user: str | None = None


def session_dict(t: TerminalSession) -> dict[str, Any]:
    return {
        "id": t.id, "user": t.username, "host": t.host_name, "address": t.address, "login_user": t.login_user,
        "client_address": t.client_address, "status": t.status, "reason": t.reason, "cols": t.cols,
        "rows": t.rows, "started_at": iso(t.started_at), "ended_at": iso(t.ended_at),
        "duration": (t.ended_at - t.started_at).total_seconds() if t.ended_at else None,
        "output_bytes": t.output_bytes, "input_bytes": t.input_bytes,
        "recording_bytes": t.recording_bytes, "recording_truncated": t.recording_truncated,
    }


class TerminalRun:
    """One open shell: feed it input and sizes, read its output; everything is recorded."""

    def __init__(self, service: TerminalService, session_id: int, pty: Shell,
                 recorder: AsciicastRecorder, user: str) -> None:
        self.id = session_id
        self.user = user
        self._service = service
        self._pty = pty
        self._recorder = recorder
        self._chunk = 0
        self._output_bytes = 0
        self._input_bytes = 0
        self._closed = False
        self._told_cut = False
        self._lock = asyncio.Lock()
        self._flusher = asyncio.create_task(self._flush_loop())

    async def read(self) -> str | None:
        """The next output, decoded; ``None`` once the shell has ended."""
        data = await self._pty.read()
        if not data:
            return None
        self._output_bytes += len(data)
        return self._recorder.output(data, utcnow())

    def take_notice(self) -> str | None:
        """Once, when the recording has just reached its limit: what to tell the user."""
        if self._told_cut or not self._recorder.truncated:
            return None
        self._told_cut = True
        return (f"this session's recording reached its limit ({format_size(self._recorder.limit)}, "
                "terminal.max_recording): the rest of the session is not recorded")

    def write(self, text: str) -> None:
        data = text.encode("utf-8", errors="replace")
        self._input_bytes += len(data)
        for listener in self._service.input_listeners:
            try:
                listener(self.id, self.user, data)
            except Exception:
                log.exception("terminal input listener failed")
        self._pty.write(data)

    def resize(self, cols: int, rows: int) -> None:
        cols, rows = clamp_size(cols, rows)
        self._pty.resize(cols, rows)
        self._recorder.resize(cols, rows, utcnow())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush()
            except Exception:
                log.exception("terminal session %s: writing the recording failed", self.id)

    async def flush(self) -> None:
        async with self._lock:
            lines = self._recorder.drain()
            if not lines:
                return
            self._chunk += 1
            async with self._service.db.session.begin() as s:
                s.add(TerminalChunk(session_id=self.id, seq=self._chunk, data="\n".join(lines) + "\n"))
                await s.execute(update(TerminalSession).where(TerminalSession.id == self.id).values(
                    output_bytes=self._output_bytes, input_bytes=self._input_bytes,
                    recording_bytes=self._recorder.size, recording_truncated=self._recorder.truncated,
                ))

    async def close(self, status: str, reason: str = "", *, shell_ended: bool = False) -> str:
        """End the session (idempotent): stop the shell, write the rest of the recording and the end.

        Returns the reason recorded (the shell's exit status when it ended by itself).
        """
        if self._closed:
            return reason
        self._closed = True
        if shell_ended:
            await self._pty.wait_exit()
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        await self._pty.close()
        now = utcnow()
        exit_status = self._pty.exit_status
        if exit_status is not None and not reason:
            reason = f"the shell exited with status {exit_status}"
        self._recorder.finish(now)
        try:
            await self.flush()
            async with self._service.db.session.begin() as s:
                await s.execute(update(TerminalSession).where(TerminalSession.id == self.id).values(
                    status=status, reason=reason, ended_at=now,
                ))
        except Exception:
            log.exception("terminal session %s: recording its end failed", self.id)
        log.info("terminal session %s ended: %s %s", self.id, status, reason)
        return reason


class TerminalService:
    def __init__(self, db: Database, inventory: InventoryService, connector: PtyConnector, *,
                 idle_timeout: float = IDLE_TIMEOUT, recording_limit: int = DEFAULT_LIMIT) -> None:
        self.db = db
        self.inventory = inventory
        self.connector = connector
        #: the longest a session may go without input (``terminal.idle_timeout``)
        self.idle_timeout = idle_timeout
        #: the most one session's recording keeps (``terminal.max_recording``)
        self.recording_limit = recording_limit
        self.runner = runner_id("server")
        self.input_listeners: list[InputListener] = []

    async def recover(self) -> int:
        """Mark sessions left open by a server process on this machine that is gone as interrupted."""
        async with self.db.session.begin() as s:
            rows = (await s.execute(
                select(TerminalSession.id, TerminalSession.runner).where(TerminalSession.status == "open")
            )).all()
            dead = [sid for sid, runner in rows if runner != self.runner and _gone(runner)]
            if dead:
                await s.execute(update(TerminalSession).where(TerminalSession.id.in_(dead)).values(
                    status="interrupted", reason="the server stopped during the session", ended_at=utcnow(),
                ))
        return len(dead)

    async def open(self, host_name: str, *, user: str, client: str, cols: int, rows: int,
                   failed: Callable[[int, str], Awaitable[None]] | None = None) -> TerminalRun:
        """Record the session, then connect; a failure to connect is recorded as ``failed``, handed to
        ``failed(session id, reason)`` (the caller audits it: every session row has its audit record) and raised."""
        host = await self.inventory.get_host(host_name)
        cols, rows = clamp_size(cols, rows)
        started = utcnow()
        async with self.db.session.begin() as s:
            row = TerminalSession(
                username=user, host_name=host.name, address=host.address, login_user=self.connector.login_user(host),
                client_address=client, runner=self.runner, status="open", reason="", cols=cols, rows=rows,
                started_at=started, output_bytes=0, input_bytes=0, recording_bytes=0, recording_truncated=False,
            )
            s.add(row)
            await s.flush()
            session_id = row.id
        log.info("terminal session %s: %s opens a shell on %s from %s", session_id, user, host.name, client)
        try:
            pty = await self.connector.open(host, cols=cols, rows=rows)
        except BaseException as exc:
            reason = str(getattr(exc, "message", exc))[:1000]
            async with self.db.session.begin() as s:
                await s.execute(update(TerminalSession).where(TerminalSession.id == session_id).values(
                    status="failed", reason=reason, ended_at=utcnow(),
                ))
            if failed is not None:
                await failed(session_id, reason)
            raise
        recorder = AsciicastRecorder(cols=cols, rows=rows, started=started, limit=self.recording_limit,
                                     title=f"{user}@{host.name}")
        return TerminalRun(self, session_id, pty, recorder, user)

    async def list(self, f: SessionFilter, *, limit: int, offset: int) -> tuple[list[TerminalSession], int]:
        q = select(TerminalSession)
        if f.host:
            q = q.where(TerminalSession.host_name == f.host)
        if f.user:
            q = q.where(TerminalSession.username == f.user)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(q.subquery()))
            rows = (await s.scalars(q.order_by(TerminalSession.id.desc()).limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)

    async def get(self, session_id: int) -> TerminalSession:
        async with self.db.session() as s:
            row = await s.get(TerminalSession, session_id)
        if row is None:
            raise NotFound(f"terminal session {session_id} not found")
        return row

    async def recording(self, session_id: int) -> AsyncIterator[str]:
        """The asciicast v2 text, chunk by chunk (a session still open gives what is flushed so far)."""
        await self.get(session_id)
        seq = 0
        while True:
            async with self.db.session() as s:
                rows = (await s.execute(
                    select(TerminalChunk.seq, TerminalChunk.data)
                    .where(TerminalChunk.session_id == session_id, TerminalChunk.seq > seq)
                    .order_by(TerminalChunk.seq).limit(50)
                )).all()
            if not rows:
                return
            for _n, data in rows:
                yield data
            seq = rows[-1][0]


def _gone(runner: str) -> bool:
    return process_state(runner) is ProcessState.GONE
