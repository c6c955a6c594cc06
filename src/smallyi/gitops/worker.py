"""A warm child process for rendering, so that a template's run time and memory are never the server's.

Rendering a commit runs what whoever can push wrote. In the server's own process a loop without end
would hold the event loop (no ``/healthz``, no API) and fill its memory, so it runs in a child:

- started as ``python -m smallyi.gitops.worker``: a fresh interpreter, never a fork of the running
  server with its threads, sockets and event loop; kept warm between calls, one call at a time;
- its address space capped (``RLIMIT_AS``, ``gitops.render_memory``): an allocation past it is a
  MemoryError, which the render reports with the template, line and host it happened at;
- each call under a timer (``SIGALRM`` after ``gitops.render_timeout``) that stops the render where it
  is, reported the same way; if the child does not answer by itself, a CPU limit (``RLIMIT_CPU``) and
  the parent's own clock (a few seconds later) end it;
- a child whose call failed, or that grew large, exits after answering; the next call starts another.

Calls and answers are pickled frames on the child's stdin and stdout. The child runs as the server's
user: it bounds resources, not privileges (the Jinja2 sandbox bounds what a template can reach). It
gets only the environment Python needs (``CHILD_ENV``): not the master key's variable, nor any other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import pickle
import resource
import signal
import struct
import sys
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any, BinaryIO

from smallyi.errors import SmallYiError, TemplateError
from smallyi.gitops.bounds import MiB, RenderStopped, RenderTimeout, out_of_memory, size_text

log = logging.getLogger(__name__)

#: seconds past a call's timeout before the parent kills a child that has not answered
GRACE = 5.0
#: seconds a new child may take to start (a fresh interpreter importing the renderer)
START_TIMEOUT = 60.0
#: a child whose peak resident memory passed this exits after its call, giving the memory back
RETIRE_RSS = 256 * MiB
_HEADER = struct.Struct(">Q")
#: the environment variables the child keeps (and every ``PYTHON*`` and ``LC_*`` one): what Python needs
#: to start and find small-yi; secrets the server reads from its environment stay out
CHILD_ENV = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "VIRTUAL_ENV")


class WorkerStopped(Exception):
    """The child did not answer a call: it was stopped at a limit, or it died. ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Worker:
    """The parent's side: one warm child, calls one at a time (see the module docstring)."""

    def __init__(self, *, memory: int, preload: str = "smallyi.gitops.render") -> None:
        self.memory = memory
        self.preload = preload
        self._proc: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[asyncio.subprocess.Process] | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs (tests and diagnostics)."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def warm(self) -> None:
        """Start a child in the background if none runs, so that the next call need not wait for it."""
        if (self._proc is None or self._proc.returncode is not None) and self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._spawn())

    async def call(self, fn: Callable[..., Any], *args: Any, timeout: float, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the child, stopped after ``timeout`` seconds; its value or its error.

        ``fn`` and its arguments must pickle (a module-level function, plain values). A SmallYiError
        raised by ``fn`` is raised here; WorkerStopped if the child was stopped or died.
        """
        async with self._lock:
            proc = await self._ready()
            assert proc.stdin is not None and proc.stdout is not None
            payload = pickle.dumps((fn, args, kwargs, timeout), protocol=pickle.HIGHEST_PROTOCOL)
            try:
                proc.stdin.write(_HEADER.pack(len(payload)) + payload)
                await proc.stdin.drain()
                answer = await asyncio.wait_for(_read_frame(proc.stdout), timeout + GRACE)
            except TimeoutError:
                await self._stop()
                raise WorkerStopped(f"rendering took longer than {timeout:g}s (gitops.render_timeout) and did "
                                    "not stop; the rendering process was killed") from None
            except (asyncio.IncompleteReadError, ConnectionError):
                raise WorkerStopped(await self._died(timeout)) from None
            except BaseException:  # cancelled mid-call: the child's answer would come to the next call
                await self._stop()
                raise
            kind, value, retire = pickle.loads(answer)  # noqa: S301 - our own child's answer
            if retire:
                await self._stop(gently=True)
        if kind == "ok":
            return value
        if kind == "error":
            raise _rebuild(*value)
        log.error("gitops: the rendering process failed:\n%s", value)
        raise WorkerStopped("the rendering process failed (an internal error; the server log has the details)")

    async def close(self) -> None:
        """Stop the child (and one being started)."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                self._proc = await self._starting
            self._starting = None
        await self._stop(gently=True)

    # -- the child's life ------------------------------------------------------------------------

    async def _ready(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        self._proc = None
        self.warm()
        assert self._starting is not None
        try:
            self._proc = await self._starting
        finally:
            self._starting = None
        return self._proc

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {k: v for k, v in os.environ.items() if k in CHILD_ENV or k.startswith(("PYTHON", "LC_"))}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smallyi.gitops.worker", "--memory", str(self.memory), "--preload", self.preload,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )
        assert proc.stdout is not None
        try:
            await asyncio.wait_for(_read_frame(proc.stdout), START_TIMEOUT)  # "ready", once it has imported
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise WorkerStopped(f"the rendering process did not start (exit status {code}); the server log "
                                "has its error") from None
        return proc

    async def _stop(self, *, gently: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if gently and proc.stdin is not None:
            proc.stdin.close()  # end of input: the child exits by itself
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
                return
            except TimeoutError:
                pass
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    async def _died(self, timeout: float) -> str:
        proc, self._proc = self._proc, None
        code = await proc.wait() if proc is not None else None
        if code == -signal.SIGXCPU:
            return f"rendering used more than {timeout:g}s of CPU time (gitops.render_timeout); it was stopped"
        if code == -signal.SIGKILL:
            return (f"the rendering process was killed (signal {signal.SIGKILL.value}), perhaps out of memory: "
                    f"gitops.render_memory is {size_text(self.memory)}")
        return f"the rendering process ended unexpectedly (exit status {code}); the server log has its error"


async def _read_frame(stream: asyncio.StreamReader) -> bytes:
    (size,) = _HEADER.unpack(await stream.readexactly(_HEADER.size))
    return await stream.readexactly(size)


def _rebuild(cls: type[SmallYiError], message: str, field: str | None, problems: list[str] | None) -> SmallYiError:
    """The child's error as the same class here (exceptions with keyword fields do not pickle whole)."""
    if not (isinstance(cls, type) and issubclass(cls, SmallYiError)):
        return TemplateError(message)
    exc = cls.__new__(cls)
    SmallYiError.__init__(exc, message, field=field)
    if problems is not None:
        exc.problems = problems  # type: ignore[attr-defined]
    return exc


# -- the child -----------------------------------------------------------------------------------

_timeout = 0.0
_fired = False


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    global _fired
    _fired = True
    raise RenderTimeout(_timeout)


def _limit_cpu(seconds: float) -> None:
    """At most ``seconds`` (plus the grace) more CPU time: past it the kernel ends the process (SIGXCPU)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds + GRACE) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _limit_memory(memory: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _serve(payload: bytes, memory: int) -> tuple[bytes, bool]:
    """One call: its pickled answer ``(kind, value, retire)``, and whether this child should exit after it."""
    global _timeout, _fired
    fn, args, kwargs, timeout = pickle.loads(payload)  # noqa: S301 - our parent's call
    _timeout, _fired = float(timeout), False
    _limit_cpu(_timeout)
    answer: tuple[str, Any]
    try:
        signal.setitimer(signal.ITIMER_REAL, _timeout)
        try:
            answer = ("ok", fn(*args, **kwargs))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except SmallYiError as exc:
        answer = ("error", (type(exc), exc.message, exc.field, getattr(exc, "problems", None)))
    except RenderStopped as exc:  # a limit outside any template (reading the repository's files)
        answer = ("error", (TemplateError, exc.message, "template", None))
    except MemoryError:
        answer = ("error", (TemplateError, out_of_memory(memory), "template", None))
    except Exception:
        answer = ("crash", traceback.format_exc())
    big = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 > RETIRE_RSS
    retire = answer[0] != "ok" or _fired or big
    try:
        return pickle.dumps((*answer, retire), protocol=pickle.HIGHEST_PROTOCOL), retire
    except MemoryError:
        return pickle.dumps(("error", (TemplateError, out_of_memory(memory), "template", None), True)), True


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _write(out: BinaryIO, data: bytes) -> None:
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def main(argv: list[str] | None = None) -> None:
    """The child: set its limits, import the renderer, say ready, then answer calls until end of input."""
    p = argparse.ArgumentParser(prog="python -m smallyi.gitops.worker")
    p.add_argument("--memory", type=int, required=True)
    p.add_argument("--preload", default="")
    a = p.parse_args(argv)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to the server's log, never into the answers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C at the server's terminal: the parent stops us
    signal.signal(signal.SIGALRM, _on_alarm)
    _limit_memory(a.memory)
    if a.preload:
        importlib.import_module(a.preload)
    _write(out, b"ready")
    inp = sys.stdin.buffer
    while True:
        header = _read_exact(inp, _HEADER.size)
        if header is None:
            return
        payload = _read_exact(inp, _HEADER.unpack(header)[0])
        if payload is None:
            return
        answer, retire = _serve(payload, a.memory)
        _write(out, answer)
        if retire:
            return


if __name__ == "__main__":
    main()
