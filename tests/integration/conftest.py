"""Engine integration fixtures: the real OpenSSH fleet (session-wide) and hostile asyncssh hosts.

The fleet lives in ``$SMALLYI_FLEET_DIR`` (default /tmp/small-yi-fleet) with ``$SMALLYI_FLEET_N`` hosts
(default 20). A running fleet is reused (and left running); one this session started is taken down
at the end. Tests needing it are marked ``fleet`` and skipped where it cannot run (no root, no sshd).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from smallyi.testing import Fleet, HostileFleet, fleet_down, fleet_running, fleet_up
from support import missing

REPO = Path(__file__).resolve().parents[2]
FLEET_SCRIPT = Path(os.environ.get("SMALLYI_FLEET_SCRIPT", REPO.parent / "shared" / "fleet" / "fleet.sh"))


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    """The real fleet: reused if up (with enough hosts), else started for this session."""
    directory = Path(os.environ.get("SMALLYI_FLEET_DIR", "/tmp/small-yi-fleet"))
    n = int(os.environ.get("SMALLYI_FLEET_N", "20"))
    if not FLEET_SCRIPT.exists():
        missing(f"fleet script {FLEET_SCRIPT} not found")
    if os.geteuid() != 0 or not shutil.which("sshd", path="/usr/sbin:/usr/bin"):
        missing("the fleet needs root and openssh-server")
    was_up = fleet_running(FLEET_SCRIPT, directory)
    hosts_txt = directory / "hosts.txt"
    have = len(hosts_txt.read_text().splitlines()) if was_up and hosts_txt.exists() else 0
    if not was_up or have < n:
        fleet_up(FLEET_SCRIPT, directory, max(n, have))
    yield Fleet.load(directory, n)
    if not was_up:
        fleet_down(FLEET_SCRIPT, directory)


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[HostileFleet]:
    """A set of hostile hosts on 127.0.0.1 (start them with ``await hostile.start(Behaviour.X)``)."""
    async with HostileFleet(tmp_path / "hostile") as hf:
        yield hf
