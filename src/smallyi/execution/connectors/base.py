"""The one interface every way of reaching a host implements, and what the engine hands it.

A connector runs one command on one host: it connects (calling :meth:`RunContext.admit` before any
new connection, for the job's rate limit), calls :meth:`RunContext.command_started` right before the
command is sent (the command timeout starts there; until then the connect timeout runs), feeds the
host's bytes to ``ctx.stdout`` / ``ctx.stderr`` and returns the :class:`Exit`.

Timeouts and cancellation arrive as ``asyncio.CancelledError`` at an ``await``: the connector then
stops the command (best effort, within ``ctx.kill_grace``) and re-raises. Failing to connect is
:class:`~smallyi.errors.HostUnreachable` (or a subclass) with a message in plain words.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smallyi.errors import ExecutionError
from smallyi.execution.files import Admit, FilePut, FileResult
from smallyi.execution.limits import RateLimiter
from smallyi.execution.output import LineSplitter
from smallyi.inventory.hosts import HostSpec


@dataclass(frozen=True, slots=True)
class Exit:
    """How a command ended: an exit status, or a signal (name without ``SIG``), or neither."""

    code: int | None = None
    signal: str | None = None
    #: anything odd worth telling the user, e.g. output left open after the command exited
    note: str = ""


class RunContext:
    """One host's run: what to run, where output goes, and the hooks for timing and rate."""

    __slots__ = (
        "_prepaid",
        "_rate",
        "_timeout",
        "command",
        "host",
        "kill_grace",
        "on_start",
        "started",
        "stderr",
        "stdout",
        "timer",
    )

    def __init__(
        self,
        host: HostSpec,
        command: str,
        stdout: LineSplitter,
        stderr: LineSplitter,
        *,
        kill_grace: float,
        timeout: float = 0.0,
        timer: asyncio.Timeout | None = None,
        rate: RateLimiter | None = None,
        prepaid: bool = False,
    ) -> None:
        self.host = host
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        self.kill_grace = kill_grace
        self.started = False
        #: called by command_started (follow uses it to announce a rejoin)
        self.on_start: Callable[[], None] | None = None
        self._timeout = timeout
        #: the host's deadline (connect, then command): rescheduled by command_started
        self.timer = timer
        self._rate = rate
        self._prepaid = prepaid

    def command_started(self) -> None:
        """Call once, right before the command is sent: from here ``timeout`` applies, not connect's."""
        self.started = True
        if self.on_start is not None:
            self.on_start()
        timer = self.timer
        if timer is not None:
            timeout = self._timeout
            timer.reschedule(asyncio.get_running_loop().time() + timeout if timeout > 0 else None)

    async def admit(self) -> None:
        """Call before opening a new connection: waits for the job's rate limit (reuse never does)."""
        if self._prepaid:
            self._prepaid = False
        elif self._rate is not None:
            await self._rate.acquire()

    def close_output(self) -> None:
        """Flush partial last lines and drop anything arriving later (the host is being finished)."""
        self.stdout.close()
        self.stderr.close()


class Connector(abc.ABC):
    """One way of reaching hosts (``HostSpec.connector`` names it)."""

    def needs_connection(self, host: HostSpec) -> bool:
        """Whether running on ``host`` now would open a new connection (so costs a rate token)."""
        return False

    @abc.abstractmethod
    async def run(self, ctx: RunContext) -> Exit:
        """Run ``ctx.command`` on ``ctx.host``; see the module docstring for the duties."""

    async def put_files(self, host: HostSpec, files: Sequence[FilePut], admit: Admit) -> list[FileResult]:
        """Write ``files`` on ``host``, each atomically (temporary file, owner and mode, rename).

        One result per file, in order; a failing file does not stop the others. Calls ``admit``
        before opening a new connection; failing to connect is HostUnreachable.
        """
        raise ExecutionError(f"hosts reached by {type(self).__name__} cannot receive files")

    async def get_files(self, host: HostSpec, paths: Sequence[str], admit: Admit) -> list[FileResult]:
        """Read ``paths`` on ``host``: the content, ``missing`` for a file that does not exist, or an error."""
        raise ExecutionError(f"hosts reached by {type(self).__name__} cannot send files")

    def stats(self) -> dict[str, int]:
        return {}

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the connector holds (pooled connections)."""

    def retire(self) -> None:  # noqa: B027 - optional hook, nothing pooled by default
        """A reload replaced this connector: reuse nothing from now on (pooled connections close once idle)."""
