"""The peer tools and the raw-asyncssh floor: each a command line plus a way to count, from its own
output, the hosts that answered.

The tools live in the venv ``python -m bench.setup_peers`` makes (``$PEERS_VENV``, default .bench/peers
in the checkout); the floor and the parallel-ssh and fabric drivers are this folder's peer_*.py.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS_VENV = Path(os.environ.get("PEERS_VENV", BENCH.parent / ".bench" / "peers")).absolute()

#: Ansible as a user who runs it often sets it up: ControlPersist, no host key prompt, the system python
ANSIBLE_ENV = {
    "ANSIBLE_HOST_KEY_CHECKING": "False",
    "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    "ANSIBLE_LOCALHOST_WARNING": "False",
    "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
}


@dataclass(frozen=True)
class Peer:
    name: str
    argv: list[str]
    env: dict[str, str]
    kind: str

    def ok(self, out: str) -> int:
        """Hosts that answered, read from the tool's own output (stdout and stderr together)."""
        if self.kind == "ansible":
            return len(re.findall(r"\| CHANGED \|", out))
        if self.kind in ("pyinfra", "xargs"):
            return sum(1 for line in out.splitlines() if "load average" in line)
        found = re.findall(r"ok (\d+)", out)
        return int(found[-1]) if found else 0


def available() -> bool:
    return (PEERS_VENV / "bin" / "python").exists()


def have(tool: str) -> bool:
    return (PEERS_VENV / "bin" / tool).exists()


def floor_python() -> str:
    """The floor's interpreter: the peers' venv's, else this one (small-yi's venv has asyncssh too).

    So the floor rows, which every ratio is taken against, are there even before ``bench.setup_peers`` ran.
    """
    return str(PEERS_VENV / "bin" / "python") if available() else sys.executable


def floor(sub: Path, cmd: str, rounds: int = 1) -> Peer:
    """Raw asyncssh (peer_asyncssh.py): the floor. ``rounds`` > 1 adds pooled rounds."""
    argv = [floor_python(), str(BENCH / "peer_asyncssh.py"), str(sub), cmd]
    if rounds > 1:
        argv += ["--rounds", str(rounds)]
    return Peer("raw asyncssh", argv, {}, "floor")


def round_times(out: str) -> list[float]:
    """peer_asyncssh.py's per-round seconds, in order."""
    return [float(m) for m in re.findall(r"^round \d+ ok \d+/\d+ ([0-9.]+)s", out, re.M)]


def pssh(sub: Path, cmd: str, pool: int = 100) -> Peer:
    return Peer(f"parallel-ssh, pool {pool}", [str(PEERS_VENV / "bin" / "python"),
                str(BENCH / "peer_pssh.py"), str(sub), cmd, str(pool)], {}, "pssh")


def fabric(sub: Path, cmd: str) -> Peer:
    return Peer("fabric ThreadingGroup", [str(PEERS_VENV / "bin" / "python"), str(BENCH / "peer_fabric.py"),
                str(sub), cmd], {}, "fabric")


def pyinfra(sub: Path, cmd: str, parallel: int = 100) -> Peer:
    return Peer(f"pyinfra exec --parallel {parallel}", [str(PEERS_VENV / "bin" / "pyinfra"), "-y", "--parallel",
                str(parallel), str(sub / "inventory.py"), "exec", "--", cmd], {}, "pyinfra")


def ansible(sub: Path, cmd: str, forks: int = 50) -> Peer:
    return Peer(f"ansible -f {forks}", [str(PEERS_VENV / "bin" / "ansible"), "all", "-i", str(sub / "inventory.ini"),
                "-m", "command", "-a", cmd, "-f", str(forks)], dict(ANSIBLE_ENV), "ansible")


def xargs(sub: Path, cmd: str, parallel: int = 100) -> Peer:
    script = (f"awk '{{print $2}}' {sub}/hosts.txt | xargs -P{parallel} -I{{}} "
              f"ssh -F {sub}/ssh_config {{}} '{cmd}'")
    return Peer(f"xargs -P{parallel} ssh", ["sh", "-c", script], {}, "xargs")
