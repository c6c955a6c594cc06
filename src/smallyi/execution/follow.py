"""Follow log files across hosts (``small-yi logs``): ``tail -F`` everywhere, merged, grep-filtered.

Events, per host: one HostStarted; HostOutput for each new stdout line that matches ``grep`` (Python
``re``, compiled once, applied here, not on the host); and one HostDone (``cancelled``, reason
``stopped``) when ``job.cancel`` is set or the follow task is cancelled.

A host that drops out (connection lost, unreachable, ``tail`` exits) is reported as a notice on its
stderr stream, ``[small-yi] <why>; rejoining in <n>s``, and rejoined with exponential backoff (1 s
doubling to 30 s, reset after a session that lasted a while) until cancelled; a successful rejoin
says ``[small-yi] rejoined``. Rejoins tail with ``-n 0``: lines written while a host was away are
not replayed. Notices carry ``size=0`` (the host sent nothing). Follow sessions are long-lived, so
they do not take the global session slots of ``run``; ``job.rate`` still limits new connections
and ``job.command``/``timeout``/``concurrency`` are ignored.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from smallyi.config import ExecutionSettings, OutputSettings, SSHSettings
from smallyi.errors import ExecutionError, HostUnreachable, InputError
from smallyi.execution.connectors.base import Connector, RunContext
from smallyi.execution.events import Emit, Event, HostDone, HostOutput, HostStarted
from smallyi.execution.job import Job, run_until_cancel
from smallyi.execution.limits import RateLimiter
from smallyi.execution.outcome import outcome, safe_emit
from smallyi.execution.output import LineSplitter
from smallyi.inventory.hosts import HostSpec
from smallyi.types import HostStatus

log = logging.getLogger(__name__)

NOTICE = "[small-yi] "
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
#: a session that lasted this long resets the backoff
STABLE_AFTER = 10.0


def tail_command(files: Sequence[str], lines: int) -> str:
    """``tail -n N -F -- FILE...`` with every file shell-quoted."""
    return f"tail -n {int(lines)} -F -- " + " ".join(shlex.quote(f) for f in files)


def compile_grep(grep: str | None) -> re.Pattern[str] | None:
    """The filter regex, or InputError naming the problem."""
    if grep is None or grep == "":
        return None
    try:
        return re.compile(grep)
    except re.error as exc:
        raise InputError(f"--grep {grep!r} is not a valid regular expression: {exc}", field="grep") from None


def check_files(files: Sequence[str]) -> list[str]:
    if isinstance(files, str) or not files:
        raise InputError("give at least one file to follow (--file PATH)", field="files")
    out = []
    for f in files:
        if not isinstance(f, str) or not f or "\0" in f or "\n" in f:
            raise InputError(f"file {f!r} is not a usable path", field="files")
        out.append(f)
    return out


class EngineView(Protocol):
    """What a follow uses of the engine: its public connectors and settings (no import of it, which
    imports this module)."""

    @property
    def connectors(self) -> Mapping[str, Connector]: ...
    @property
    def ssh(self) -> SSHSettings: ...
    @property
    def execution(self) -> ExecutionSettings: ...
    @property
    def output(self) -> OutputSettings: ...


class Follower:
    """One ``logs`` session over many hosts; see the module docstring."""

    def __init__(self, engine: EngineView, *, files: Sequence[str], lines: int, grep: str | None) -> None:
        if not isinstance(lines, int) or lines < 0:
            raise InputError(f"--lines must be a whole number ≥ 0, not {lines!r}", field="lines")
        self._engine = engine
        paths = check_files(files)
        self.first_command = tail_command(paths, lines)
        self.rejoin_command = tail_command(paths, 0)
        self._pattern = compile_grep(grep)

    async def run(self, job: Job, emit: Emit) -> None:
        if not job.hosts:
            return
        loop = asyncio.get_running_loop()
        rate = RateLimiter(job.rate) if job.rate > 0 else None
        tasks = [loop.create_task(self._host(host, emit, rate)) for host in job.hosts]
        await run_until_cancel(job.cancel, tasks, "follow task")

    def _filtered(self, emit: Emit) -> Emit:
        pattern = self._pattern
        if pattern is None:
            return emit
        search = pattern.search

        def filtered(event: Event) -> None:
            if not isinstance(event, HostOutput) or search(event.text) is not None:
                emit(event)

        return filtered

    async def _host(self, host: HostSpec, emit: Emit, rate: RateLimiter | None) -> None:
        engine = self._engine
        name = host.name
        loop = asyncio.get_running_loop()
        started = time.time()
        status, reason = HostStatus.CANCELLED, "stopped"
        safe_emit(emit, HostStarted(name, started))

        def notice(text: str) -> None:
            safe_emit(emit, HostOutput(name, "stderr", NOTICE + text, 0))

        try:
            connector = engine.connectors.get(host.connector)
            if connector is None:
                status, reason = HostStatus.UNREACHABLE, f"no connector named {host.connector!r}"
                return
            limit = engine.output.max_line_bytes
            connect_timeout = host.ssh.connect_timeout or engine.ssh.connect_timeout
            command, joined, failures = self.first_command, False, 0
            while True:
                ctx = RunContext(
                    host,
                    command,
                    LineSplitter(name, "stdout", self._filtered(emit), limit),
                    LineSplitter(name, "stderr", emit, limit),
                    kill_grace=engine.execution.kill_grace,
                    rate=rate,
                )
                if joined:
                    ctx.on_start = lambda: notice("rejoined")
                began = loop.time()
                try:
                    async with asyncio.timeout(connect_timeout if connect_timeout > 0 else None) as timer:
                        ctx.timer = timer
                        result = await connector.run(ctx)
                    why = "tail ended: " + (outcome(result)[1] or "exit status 0")
                except TimeoutError:
                    why = f"connect to {host.address}:{host.port} timed out after {connect_timeout:g}s"
                except (HostUnreachable, ExecutionError) as exc:
                    why = exc.message
                except Exception as exc:
                    log.exception("following on %s failed", name)
                    why = f"internal error: {exc!r}"
                finally:
                    ctx.close_output()
                if ctx.started:
                    joined, command = True, self.rejoin_command
                if loop.time() - began >= STABLE_AFTER:
                    failures = 0
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**failures)
                failures += 1
                notice(f"{why}; rejoining in {delay:g}s")
                await asyncio.sleep(delay)
        finally:
            safe_emit(emit, HostDone(name, status, None, reason, started, time.time()))
