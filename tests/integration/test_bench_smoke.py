"""The benchmark harness works end to end: ``python -m bench --smoke`` on a tiny fleet of its own.

Only that it runs and writes its table is checked, never a timing: CI machines are noisy, and the
bars of issue 4 are for ``make bench`` on a quiet machine, reported in docs/performance.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.fleet]


def test_bench_smoke_runs_every_scenario_and_writes_its_table(sshd_available: None) -> None:
    """Every scenario runs once on 5-8 hosts with fleets of its own (free ports, never a test session's)
    and lands in the table; both fleets and the delay line are stopped at the end."""
    # not pytest's tmp_path: its parent is 0700, and sshd reads the fleet's authorized_keys as the fleet user
    work = Path(tempfile.mkdtemp(prefix="small-yi-bench-smoke-"))
    work.chmod(0o755)
    try:
        out = work / "performance.md"
        r = subprocess.run(
            [sys.executable, "-m", "bench", "--smoke", "--work", str(work), "--out", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
        )
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        page = out.read_text()
        for row in ("CLI start-up", "cold, N=5", "warm (pooled), N=5", "cold, N=8", "live latency, N=5",
                    "output flood, 2 MB", "archive, 20,000 results", "20 ms RTT, N=5"):
            assert row in page, f"{row!r} missing from the table:\n{page}"
        assert "failed:" not in page
        # both of its fleets are down again, and the delay line
        for fleet in ("fleet", "fleet-wan"):
            assert not (work / fleet / "sshd.pid").exists()
        assert not (work / "fleet-wan" / "delay.pid").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
