"""The server's pid file as `small-yi reload` reads it: only a live `small-yi serve` that wrote it is
signalled; a stale file, a recycled pid or another program are refused with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from smallyi.cli import pidfile
from smallyi.errors import SmallYiError


def _write(path: Path, pid: int, start: str) -> None:
    path.write_text(json.dumps({"pid": pid, "start": start, "config": "/c.yaml", "listen": "127.0.0.1:1"}))


def test_no_pid_file_says_no_server_runs(tmp_path: Path) -> None:
    """No file: no server runs for this config, and where the file was looked for."""
    with pytest.raises(SmallYiError, match="no small-yi server is running for this config: there is no pid file"):
        pidfile.find_server(tmp_path / "small-yi.pid")


def test_a_pid_that_has_ended_or_was_recycled_is_not_signalled(tmp_path: Path) -> None:
    """A process that has exited, or a live pid whose start time differs from the file's (reused)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    path = tmp_path / "small-yi.pid"
    _write(path, gone.pid, "123")
    with pytest.raises(SmallYiError, match=f"names process {gone.pid}, which has ended"):
        pidfile.find_server(path)
    _write(path, os.getpid(), "1")  # our pid, but not the process that wrote the file
    with pytest.raises(SmallYiError, match="which has ended"):
        pidfile.find_server(path)


def test_a_live_process_that_is_not_small_yi_serve_is_refused(tmp_path: Path) -> None:
    """The file's pid and start time match a live process, but it is not `small-yi serve` (here: pytest)."""
    path = tmp_path / "small-yi.pid"
    _write(path, os.getpid(), pidfile.process_start(os.getpid()) or "")
    with pytest.raises(SmallYiError, match="which is not a small-yi server"):
        pidfile.find_server(path)


def test_claim_writes_our_pid_over_a_stale_file_and_release_removes_only_ours(tmp_path: Path) -> None:
    """A server claims a missing or stale pid file (folders made); at exit it removes its own only."""
    path = tmp_path / "data" / "small-yi.pid"
    assert pidfile.claim(path, config="/c.yaml", listen="127.0.0.1:8080") is None
    data = json.loads(path.read_text())
    assert data["pid"] == os.getpid() and data["start"] == pidfile.process_start(os.getpid())
    pidfile.release(path)
    assert not path.exists()
    _write(path, 1, "1")
    pidfile.release(path)
    assert path.exists()  # not ours: left alone


def test_a_request_names_who_asks_once_and_only_while_fresh(tmp_path: Path) -> None:
    """Who asked is taken once (the file removed); a request older than a minute is not for this signal."""
    path = tmp_path / "small-yi.pid"
    pidfile.ask(path, "cli:alice")
    assert oct(pidfile.request_path(path).stat().st_mode & 0o777) == "0o600"
    assert pidfile.asked(path) == f"cli:alice (uid {os.getuid()})"
    assert pidfile.asked(path) is None
    pidfile.request_path(path).write_text(json.dumps({"by": "cli:bob", "at_ns": time.time_ns() - 120 * 10**9}))
    assert pidfile.asked(path) is None  # left by a CLI that never sent its signal


def test_wait_report_takes_only_a_reload_begun_after_the_signal(tmp_path: Path) -> None:
    """An older report (a reload begun before our SIGHUP) is not ours; the report file is private (0600)."""
    path = tmp_path / "small-yi.pid"
    since = time.time_ns()
    pidfile.write_report(path, {"started_ns": since - 1, "status": "reloaded"})
    assert pidfile.wait_report(path, since_ns=since, timeout=0.2) is None
    pidfile.write_report(path, {"started_ns": since + 1, "status": "unchanged"})
    assert pidfile.wait_report(path, since_ns=since, timeout=0.2) == {"started_ns": since + 1, "status": "unchanged"}
    assert oct(pidfile.report_path(path).stat().st_mode & 0o777) == "0o600"
