"""The server's pid file, and the two files ``small-yi reload`` and the server exchange beside it.

``serve`` writes ``server.pid_file`` (JSON: its pid, the process's start time, the config file, the
address) once it can take a reload, and removes it when it stops. ``small-yi reload`` reads it, checks
that the pid is still that ``small-yi serve`` process (the start time matches, so a recycled pid is
never signalled), leaves who asks in ``<pid file stem>.reload-request``, sends SIGHUP, and waits for
the server's report in ``<pid file stem>.reload.json`` (mode 0600) of a reload begun after its signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smallyi.errors import SmallYiError

#: a request older than this when the server takes it was not for this signal (a CLI that died before sending)
REQUEST_TTL = 60.0


@dataclass(frozen=True, slots=True)
class PidInfo:
    pid: int
    #: the process's start time in clock ticks since boot (``/proc/PID/stat``); "" where there is no /proc
    start: str
    config: str
    listen: str


def request_path(pid_file: Path) -> Path:
    return pid_file.with_suffix(".reload-request")


def report_path(pid_file: Path) -> Path:
    return pid_file.with_suffix(".reload.json")


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot); None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name may hold spaces and ')'


def _cmdline(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write(path: Path, data: dict[str, Any], mode: int) -> None:
    """Write ``path`` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_server(pid_file: Path) -> PidInfo:
    """The live ``small-yi serve`` that wrote ``pid_file``; SmallYiError saying why there is none."""
    data = _read(pid_file)
    if data is None:
        why = "there is no pid file" if not pid_file.exists() else "its pid file cannot be read"
        raise SmallYiError(f"no small-yi server is running for this config: {why} at {pid_file} (a server writes "
                           "it once started; is it running with another config, or another server.pid_file?)")
    try:
        info = PidInfo(int(data["pid"]), str(data.get("start", "")), str(data.get("config", "")),
                       str(data.get("listen", "")))
    except (KeyError, TypeError, ValueError):
        raise SmallYiError(f"the pid file {pid_file} is not small-yi's (no pid in it)") from None
    gone = SmallYiError(f"no small-yi server is running for this config: the pid file {pid_file} names process "
                        f"{info.pid}, which has ended (a server that stopped without removing it); start the server")
    start = process_start(info.pid)
    if start is None:
        if Path("/proc/self/stat").exists() or not _alive(info.pid):
            raise gone
    elif info.start and start and start != info.start:
        raise gone  # the pid now belongs to another process
    argv = _cmdline(info.pid)
    if argv is not None and not ("serve" in argv and any("small-yi" in a or "smallyi" in a for a in argv)):
        raise SmallYiError(f"the pid file {pid_file} names process {info.pid}, which is not a small-yi server "
                           f"({' '.join(argv)[:100]!r}); remove the stale file and check server.pid_file")
    return info


def claim(pid_file: Path, *, config: str, listen: str) -> PidInfo | None:
    """Write our pid file; if another live server holds it, leave it and return that server's."""
    with contextlib.suppress(SmallYiError):
        other = find_server(pid_file)
        if other.pid != os.getpid():
            return other
    _write(pid_file, {"pid": os.getpid(), "start": process_start(os.getpid()) or "", "config": config,
                      "listen": listen}, 0o600)  # in the private data folder, like the rest
    return None


def release(pid_file: Path) -> None:
    """Remove our pid file (another server's is left alone)."""
    data = _read(pid_file)
    if data is not None and data.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            pid_file.unlink()


def ask(pid_file: Path, by: str) -> None:
    """Leave who asks for the next reload (the server records it as the reload's actor)."""
    _write(request_path(pid_file), {"by": by, "uid": os.getuid(), "at_ns": time.time_ns()}, 0o600)


def asked(pid_file: Path) -> str | None:
    """Who asked for the reload the server is about to do (and the request removed), if anyone did lately."""
    path = request_path(pid_file)
    data = _read(path)
    with contextlib.suppress(OSError):
        path.unlink()
    if data is None or not isinstance(data.get("by"), str) or not isinstance(data.get("at_ns"), int):
        return None
    if time.time_ns() - data["at_ns"] > REQUEST_TTL * 1e9:
        return None
    by = "".join(ch for ch in data["by"] if ch.isprintable())[:64]
    return f"{by} (uid {data.get('uid')})" if by else None


def write_report(pid_file: Path, report: dict[str, Any]) -> None:
    _write(report_path(pid_file), report, 0o600)


def wait_report(pid_file: Path, *, since_ns: int, timeout: float) -> dict[str, Any] | None:
    """The server's report of a reload begun at or after ``since_ns``; None if none comes within ``timeout``."""
    deadline = time.monotonic() + timeout
    path = report_path(pid_file)
    while True:
        if path.exists() and not os.access(path, os.R_OK):
            raise SmallYiError(f"the server's reload report {path} cannot be read (permission denied); run this "
                               "as the user the server runs as, or see the server's log")
        data = _read(path)
        if data is not None and isinstance(data.get("started_ns"), int) and data["started_ns"] >= since_ns:
            return data
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
