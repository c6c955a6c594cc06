"""Interactive shells on the server itself (``connector: local``), for the web terminal.

A pseudo-terminal pair, and the login shell of the user small-yi runs as in a new session that takes
the terminal as its controlling one (so Ctrl+C, job control and window sizes work as over SSH). The
shell gets a small fixed environment, not the server's (which may hold keys), and starts in that
user's home. Closing hangs the terminal up: HUP to the shell's process group, then KILL after a grace.

This is a shell with every right of the server's own user: see docs/security.md before allowing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pwd
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

from smallyi.errors import HostUnreachable

log = logging.getLogger(__name__)

TERM = "xterm-256color"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: output read ahead of the browser before reading pauses (the shell then blocks on a full terminal)
_QUEUE_HIGH, _QUEUE_LOW = 64, 16
_NO_LOGIN = ("nologin", "false")


def server_user() -> pwd.struct_passwd:
    return pwd.getpwuid(os.getuid())


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


#: run first in the child: a new session whose controlling terminal is stdin (the PTY), then the shell.
#: A tiny Python step rather than ``preexec_fn``, which event loops such as uvloop call before the
#: child's stdin is the PTY.
_TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class LocalPtySession:
    """A login shell on the server: the same surface as the SSH :class:`~.pty.PtySession`."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self._process = process
        self._master = master
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._unsent = bytearray()
        self._eof = False
        self._reading = True
        self._loop.add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every process holding the terminal has ended
            data = b""
        if not data:
            self._stop_reading()
            self._eof = True
        self._queue.put_nowait(data)
        if self._queue.qsize() >= _QUEUE_HIGH:
            self._stop_reading()

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._master)

    async def read(self) -> bytes:
        """The next output bytes; ``b""`` once the shell (and everything it left on the terminal) ended."""
        if self._eof and self._queue.empty():
            return b""
        data = await self._queue.get()
        if not self._reading and not self._eof and self._queue.qsize() <= _QUEUE_LOW and self._master >= 0:
            self._reading = True
            self._loop.add_reader(self._master, self._readable)
        return data

    def write(self, data: bytes) -> None:
        if self._master < 0:
            return
        self._unsent += data
        self._flush()

    def _flush(self) -> None:
        try:
            while self._unsent:
                n = os.write(self._master, self._unsent)
                del self._unsent[:n]
        except BlockingIOError:
            self._loop.add_writer(self._master, self._flush)
            return
        except OSError:
            self._unsent.clear()
        with contextlib.suppress(Exception):
            self._loop.remove_writer(self._master)

    def resize(self, cols: int, rows: int) -> None:
        """A new size (already clamped by the caller); the kernel tells the shell with SIGWINCH."""
        if self._master >= 0:
            with contextlib.suppress(OSError):
                _set_size(self._master, cols, rows)

    async def wait_exit(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), timeout)

    @property
    def exit_status(self) -> int | None:
        code = self._process.returncode
        return code if code is not None and code >= 0 else None

    async def close(self) -> None:
        """Hang up: HUP to the shell's process group, KILL what is left after two seconds."""
        if self._process.returncode is None:
            self._signal(signal.SIGHUP)
        if self._master >= 0:
            self._stop_reading()
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._master)
            os.close(self._master)
            self._master = -1
        try:
            await asyncio.wait_for(self._process.wait(), 2.0)
        except TimeoutError:
            self._signal(signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), 5.0)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)


def _shell_and_home(user: pwd.struct_passwd) -> tuple[str, str]:
    shell = user.pw_shell or "/bin/sh"
    if Path(shell).name in _NO_LOGIN or not os.access(shell, os.X_OK):
        shell = "/bin/sh"
    return shell, (user.pw_dir if Path(user.pw_dir).is_dir() else "/")


async def open_shell(*, cols: int, rows: int) -> LocalPtySession:
    """Start the server user's login shell (``/bin/sh`` if that is nologin) on a new PTY."""
    user = server_user()
    shell, home = _shell_and_home(user)
    env = {"HOME": home, "USER": user.pw_name, "LOGNAME": user.pw_name, "SHELL": shell, "TERM": TERM,
           "PATH": PATH, "LANG": "C.UTF-8"}
    master, slave = os.openpty()
    try:
        _set_size(slave, cols, rows)
        os.set_blocking(master, False)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", "-c", _TAKE_TERMINAL, shell, "-l",
            stdin=slave, stdout=slave, stderr=slave, cwd=home, env=env,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        os.close(master)
        raise HostUnreachable(f"cannot start a shell ({shell}) on the server: {getattr(exc, 'strerror', None) or exc}") from exc
    finally:
        os.close(slave)
    log.info("terminal: local shell %s started as %s (pid %s)", shell, user.pw_name, process.pid)
    return LocalPtySession(process, master)
