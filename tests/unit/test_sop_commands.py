"""Commands built from steps: scripts and file pushes quote everything; a push is atomic."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from smallyi.errors import InputError
from smallyi.sop.context import host_result, merge_host_results
from smallyi.sop.steps.commands import push_command, script_command


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10)


def test_script_command_passes_script_and_args_intact() -> None:
    """The script and its arguments arrive as written, quotes and all."""
    cmd = script_command('echo "$1|$2"; echo \'single\'', "sh", ["a b", "it's"])
    r = sh(cmd)
    assert r.stdout.splitlines() == ["a b|it's", "single"]
    assert shlex.split(script_command("true", "bash -e"))[:3] == ["bash", "-e", "-c"]


def test_push_writes_exact_bytes_with_mode(tmp_path: Path) -> None:
    """Content with quotes, newlines and shell syntax lands byte for byte, with the mode asked."""
    dest = tmp_path / "app.conf"
    content = "a='$(rm -rf /)'\n\"quoted\" `tick` \\ back\n\x00binary\xff".encode("latin-1")
    r = sh(push_command(str(dest), content, mode=0o640))
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == content
    assert oct(dest.stat().st_mode & 0o777) == "0o640"
    assert "wrote" in r.stdout and f"{len(content)} bytes" in r.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["app.conf"]  # no temporary file left


def test_push_replaces_atomically_and_cleans_up_on_failure(tmp_path: Path) -> None:
    """A failed push leaves the old file whole and no temporary file behind."""
    dest = tmp_path / "x.conf"
    dest.write_text("old")
    r = sh(push_command(str(dest), b"new", owner="nosuchuser-xyz"))
    assert r.returncode != 0
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.conf"]


def test_push_refuses_content_too_large_for_a_command() -> None:
    """A file too big to travel in a command is refused with a message naming it."""
    with pytest.raises(InputError, match="/etc/big"):
        push_command("/etc/big", b"x" * 60_000)


def test_host_results_aggregate_and_merge() -> None:
    """Outputs join in host order; ok/failed hosts are listed; a retry's hosts replace the failed ones."""
    first = host_result([
        {"host": "b", "status": "failed", "exit_code": 1, "stdout": "B", "stderr": "err", "reason": "exit status 1"},
        {"host": "a", "status": "success", "exit_code": 0, "stdout": "A", "stderr": ""},
    ])
    assert first["output"] == "A\nB" and first["ok_hosts"] == ["a"] and first["failed_hosts"] == ["b"]
    assert first["status"] == "failed" and first["exit_code"] == 1
    retry = host_result([{"host": "b", "status": "success", "exit_code": 0, "stdout": "B2", "stderr": ""}])
    merged = merge_host_results(first, retry)
    assert merged["status"] == "success" and merged["output"] == "A\nB2" and merged["exit_code"] == 0
