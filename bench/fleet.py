"""The benchmark's own fleets: smallyi.testing's OpenSSH fleet on a port and folder of its own, and the
same behind a delay line (bench/delay_line.py) for the WAN rows.

The test suite's fleets are never touched: each has its own folder and free port. Each peer reads the
files it always reads from a per-N subset folder (``fleet.subset(n)``: hosts.txt, inventory.ini,
inventory.py, inventory.yaml, ssh_config and fleet.json for the first N hosts).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from smallyi.testing import Fleet, FleetError

DELAY_LINE = Path(__file__).with_name("delay_line.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def up(n: int, directory: Path, port: int = 0, *, delay_ms: int = 0) -> Fleet:
    """Start (or restart) a fleet of ``n`` hosts in ``directory`` on ``port`` (0: a free one).

    With ``delay_ms`` the hosts are reached through a delay line on ``port`` adding that much each way
    (a round trip of twice it), and sshd listens on a free port of 127.0.0.1 behind it.
    """
    down_in(directory)
    if not delay_ms:
        return Fleet.start(n, directory, port=port)
    front = port or free_port()
    fleet = Fleet.start(n, directory, port=front, sshd_port=0)
    pid_file = directory / "delay.pid"
    with (directory / "delay.log").open("wb") as log:
        subprocess.Popen([sys.executable, str(DELAY_LINE), "--listen-port", str(front), "--to-port",
                          str(fleet.sshd_port), "--delay-ms", str(delay_ms), "--pid-file", str(pid_file)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 10
    while delay_pid(directory) is None:
        if time.monotonic() > deadline:
            fleet.stop()
            raise RuntimeError(f"the delay line did not start on port {front}:\n{(directory / 'delay.log').read_text()}")
        time.sleep(0.05)
    return fleet


def delay_pid(directory: Path) -> int | None:
    """The running delay line's pid, if this folder has one."""
    try:
        pid = int((directory / "delay.pid").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if str(DELAY_LINE).encode() in argv else None


def delay_ms(directory: Path) -> int:
    """The delay each way of the fleet in ``directory`` (0 without a delay line)."""
    pid = delay_pid(directory)
    if pid is None:
        return 0
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return int(float(argv[argv.index("--delay-ms") + 1]))


def down(fleet: Fleet) -> None:
    down_in(fleet.directory)


def down_in(directory: Path) -> None:
    """Stop the delay line and the sshd of the fleet in ``directory`` (each by its own pid)."""
    pid = delay_pid(directory)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(FileNotFoundError):
        (directory / "delay.pid").unlink()
    with contextlib.suppress(FleetError):
        Fleet.load(directory).stop()


def sshd_limits(fleet: Fleet) -> dict[str, str]:
    """MaxStartups and MaxSessions of the fleet's sshd, to check they suit the N being run."""
    text = (fleet.directory / "sshd_config").read_text()
    return {k: m.group(1) for k in ("MaxStartups", "MaxSessions")
            if (m := re.search(rf"^{k}\s+(\S+)", text, re.M))}
