"""Install the tools the benchmark compares small-yi with into a venv of their own.

    python -m bench.setup_peers [--venv DIR]     # DIR: $PEERS_VENV, else .bench/peers in the checkout

ansible-core, pyinfra, parallel-ssh, fabric, and asyncssh for the raw-asyncssh floor. A venv of their
own keeps their dependencies (paramiko, ssh2-python, Ansible's) out of small-yi's. ``make bench`` runs
this when the venv has no ``ansible`` yet; run it again to upgrade them. Prints the versions installed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench.peers import PEERS_VENV

PACKAGES = ("ansible-core", "pyinfra", "parallel-ssh", "fabric", "asyncssh")


def install(venv: Path) -> list[str]:
    """Create (or reuse) ``venv``, install :data:`PACKAGES` into it; returns ``name version`` lines."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--upgrade", *PACKAGES], check=True)
    code = ("from importlib.metadata import version\n"
            f"for name in {PACKAGES!r}: print(name, version(name))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.setup_peers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", type=Path, default=PEERS_VENV, help=f"the peers' venv (default {PEERS_VENV})")
    a = p.parse_args(argv)
    print(f"setup_peers: installing {', '.join(PACKAGES)} into {a.venv}", flush=True)
    try:
        versions = install(a.venv)
    except subprocess.CalledProcessError as exc:
        print(f"setup_peers: `{' '.join(map(str, exc.cmd))}` failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    for line in versions:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
