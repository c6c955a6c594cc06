"""The benchmark harness works end to end: ``python -m bench --smoke`` on a tiny fleet of its own.

Only that it runs and writes its table is checked, never a timing: CI machines are noisy, and the
bars of issue 4 are for ``make bench`` on a quiet machine, reported in docs/performance.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support import missing

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.fleet]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _ports() -> tuple[int, int]:
    """A free port for the fleet, and one for the delay-line fleet whose next port is free too."""
    found = [p for p in range(24100, 24400, 2) if _free(p) and _free(p + 1)]
    if len(found) < 2:
        missing("no free ports for the bench fleets")
    return found[0], found[1]


def test_bench_smoke_runs_every_scenario_and_writes_its_table() -> None:
    """Every scenario runs once on 5-8 hosts with its own fleets (never the shared one) and lands in the table."""
    if os.geteuid() != 0 or not shutil.which("sshd", path="/usr/sbin:/usr/bin"):
        missing("the bench fleet needs root and openssh-server")
    port, wan_port = _ports()
    # not pytest's tmp_path: its parent is 0700, and sshd reads the fleet's authorized_keys as the fleet user
    work = Path(tempfile.mkdtemp(prefix="small-yi-bench-smoke-"))
    try:
        out = work / "performance.md"
        r = subprocess.run(
            [sys.executable, "-m", "bench", "--smoke", "--work", str(work), "--port", str(port),
             "--wan-port", str(wan_port), "--out", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
        )
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        page = out.read_text()
        for row in ("CLI start-up", "cold, N=5", "warm (pooled), N=5", "cold, N=8", "live latency, N=5",
                    "output flood, 2 MB", "archive, 20,000 results", "20 ms RTT, N=5"):
            assert row in page, f"{row!r} missing from the table:\n{page}"
        assert "failed:" not in page
        # both of its fleets are down again
        for fleet in ("fleet", "fleet-wan"):
            assert not (work / fleet / "sshd.pid").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
