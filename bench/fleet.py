"""The benchmark's own fleet: ``fleet.sh`` on a port and folder of its own, and per-N subsets of it.

The shared test fleet (port 2222, /tmp/small-yi-fleet) is never touched: other people's tests use it.
A subset folder holds the same key and known_hosts and the first N hosts in every inventory format
``fleet.sh`` writes (hosts.txt, inventory.ini, inventory.py, inventory.yaml), so each peer reads the
files it always reads.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(os.environ.get("SMALLYI_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FLEET_SH = SHARED / "fleet" / "fleet.sh"


@dataclass
class Fleet:
    dir: Path
    port: int
    hosts: list[tuple[str, str]]
    delay_ms: int = 0
    started: bool = False

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def subset(self, n: int) -> Path:
        """A folder describing the first ``n`` hosts (created once; the full fleet's folder if n is all)."""
        if n > len(self.hosts):
            raise ValueError(f"the fleet has {len(self.hosts)} hosts, not {n}")
        sub = self.dir / f"n{n}"
        sub.mkdir(exist_ok=True)
        hosts = self.hosts[:n]
        for name in ("id_ed25519", "known_hosts", "ssh_config"):
            shutil.copy(self.dir / name, sub / name)
        (sub / "id_ed25519").chmod(0o600)
        (sub / "hosts.txt").write_text("".join(f"{h} {a}\n" for h, a in hosts))
        ini = (self.dir / "inventory.ini").read_text()
        vars_part = ini[ini.index("[fleet:vars]"):]
        (sub / "inventory.ini").write_text("[fleet]\n" + "".join(f"{h} ansible_host={a}\n" for h, a in hosts)
                                           + vars_part)
        py = (self.dir / "inventory.py").read_text()
        tail = py[py.index("]\nfleet = "):]
        (sub / "inventory.py").write_text("hosts = [\n" + "".join(f"    ('{h}', {{'ssh_hostname': '{a}'}}),\n"
                                                                 for h, a in hosts) + tail)
        yaml = (self.dir / "inventory.yaml").read_text().split("  - name: ")
        (sub / "inventory.yaml").write_text("  - name: ".join(yaml[: n + 1]))
        return sub


def _run(args: list[str], env: dict[str, str]) -> str:
    # a file, not a pipe: the delay line fleet.sh starts in the background keeps its stdout open
    with tempfile.TemporaryFile() as out:
        r = subprocess.run(["bash", str(FLEET_SH), *args], stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, env={**os.environ, **env}, check=False)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if r.returncode != 0:
        raise RuntimeError(f"fleet.sh {' '.join(args)} failed:\n{text}")
    return text


def up(n: int, directory: Path, port: int, *, delay_ms: int = 0) -> Fleet:
    """Start (or restart) this harness's fleet of ``n`` hosts in ``directory`` on ``port``."""
    if directory.resolve() == Path("/tmp/small-yi-fleet") or port == 2222:
        raise ValueError("refusing to use the shared test fleet's folder or port; pick others")
    env = {"FLEET_PORT": str(port)}
    if delay_ms:
        env["FLEET_DELAY"] = f"{delay_ms}ms"
    _run(["up", str(n), str(directory)], env)
    return load(directory, port, delay_ms=delay_ms, started=True)


def load(directory: Path, port: int, *, delay_ms: int = 0, started: bool = False) -> Fleet:
    hosts = [(a, b) for a, b in (line.split()[:2] for line in (directory / "hosts.txt").read_text().splitlines()
                                 if line.strip())]
    return Fleet(directory, port, hosts, delay_ms, started)


def down(fleet: Fleet) -> None:
    """Stop this harness's fleet (by its pid files, as fleet.sh does)."""
    _run(["down", str(fleet.dir)], {"FLEET_PORT": str(fleet.port)})


def sshd_limits(fleet: Fleet) -> dict[str, str]:
    """MaxStartups and MaxSessions of the fleet's sshd, to check they suit the N being run."""
    text = (fleet.dir / "sshd_config").read_text()
    return {k: m.group(1) for k in ("MaxStartups", "MaxSessions")
            if (m := re.search(rf"^{k}\s+(\S+)", text, re.M))}
