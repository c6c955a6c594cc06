"""Run commands on the server itself (``connector: local``) with ``/bin/sh -c``.

Same duties as the SSH connector. The command gets its own process group, so a timeout or cancel
stops everything it started: TERM to the group, ``kill_grace``, then KILL. A protocol object feeds
the line splitters from the pipes directly, as the SSH session does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Sequence

from smallyi.errors import HostUnreachable
from smallyi.execution.connectors import local_files
from smallyi.execution.connectors.base import Connector, Exit, RunContext
from smallyi.execution.files import Admit, FilePut, FileResult
from smallyi.inventory.hosts import HostSpec

log = logging.getLogger(__name__)

SHELL = "/bin/sh"


class _Process(asyncio.SubprocessProtocol):
    def __init__(self, ctx: RunContext, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self.transport: asyncio.SubprocessTransport | None = None
        self.done: asyncio.Future[tuple[Exception | None, str]] = loop.create_future()
        self._linger: asyncio.TimerHandle | None = None
        self._note = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        try:
            (self._ctx.stdout if fd == 1 else self._ctx.stderr).feed(data)
        except Exception as exc:  # the caller's emit failed: end this host
            log.exception("emitting output of %s failed", self._ctx.host.name)
            self._finish(exc)
            if self.transport is not None:
                self.transport.close()

    def process_exited(self) -> None:
        # a background child may hold the pipes open: the command is over, so wait kill_grace only
        if not self.done.done():
            self._linger = self._loop.call_later(max(self._ctx.kill_grace, 0.05), self._stop_lingering)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc)

    def _stop_lingering(self) -> None:
        self._note = "output was still open after the command exited; closed it"
        self._finish(None)
        if self.transport is not None:
            self.transport.close()

    def _finish(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if not self.done.done():
            self.done.set_result((exc, self._note))


class LocalConnector(Connector):
    """The machine small-yi runs on; no connection, so no rate limit applies."""

    async def run(self, ctx: RunContext) -> Exit:
        loop = asyncio.get_running_loop()
        proto = _Process(ctx, loop)
        ctx.command_started()
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: proto,
                SHELL,
                "-c",
                ctx.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise HostUnreachable(f"cannot start {SHELL}: {exc.strerror or exc}") from exc
        try:
            try:
                failure, note = await asyncio.shield(proto.done)  # shielded: _stop still waits on it
            except asyncio.CancelledError:
                await self._stop(transport, proto, ctx.kill_grace)
                raise
            if failure is not None:
                raise failure
            code = transport.get_returncode()
            if code is None:  # pipes closed by us after a linger; the process is gone or going
                code = await self._reap(transport)
        finally:
            transport.close()
        if code is not None and code < 0:
            return Exit(signal=_signal_name(-code), note=note)
        return Exit(code=code, note=note)

    async def put_files(self, host: HostSpec, files: Sequence[FilePut], admit: Admit) -> list[FileResult]:
        return await local_files.put_files(files)

    async def get_files(self, host: HostSpec, paths: Sequence[str], admit: Admit) -> list[FileResult]:
        return await local_files.get_files(paths)

    @staticmethod
    async def _reap(transport: asyncio.SubprocessTransport) -> int | None:
        for _ in range(100):
            code = transport.get_returncode()
            if code is not None:
                return code
            await asyncio.sleep(0.01)
        return transport.get_returncode()

    @staticmethod
    async def _stop(transport: asyncio.SubprocessTransport, proto: _Process, grace: float) -> None:
        """Timeout or cancel: TERM the process group, wait ``grace``, then KILL it."""
        pid = transport.get_pid()
        try:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
                if sig == signal.SIGTERM and grace > 0:
                    await asyncio.wait({proto.done}, timeout=grace)
                    if proto.done.done():
                        return
        finally:
            transport.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)
