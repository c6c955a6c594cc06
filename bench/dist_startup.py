"""``python -m bench.dist_startup``: the single-file executable's size and start-up against the venv's.

    .venv/bin/python -m bench.dist_startup                  # dist/small-yi against .venv/bin/small-yi
    .venv/bin/python -m bench.dist_startup --rounds 11 A=PATH B=PATH

Each round runs every executable once per command, interleaved (so noise from the other people on this
machine lands on every executable alike), in one workspace (a config with the ``local`` host, its SQLite
database already migrated). Prints a Markdown table: median and min-max of wall and user+sys CPU seconds.
The ``serve`` row is the time from exec to the first ``/healthz`` answer.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.proc import Timed, run_timed

REPO = Path(__file__).resolve().parents[1]


def serve_until_healthy(exe: str, ws: Path) -> Timed:
    """Exec ``serve`` and time it until /healthz answers; CPU is the server's (and its children's) by then."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([exe, "serve", "--config", "config.yaml", "--listen", f"127.0.0.1:{port}"], cwd=ws,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{exe} serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.02)
        wall = time.perf_counter() - t0
        cpu = cpu_of_tree(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return Timed([exe, "serve"], wall, cpu, 0.0, 0, "", "")


def cpu_of_tree(pid: int) -> float:
    """user+sys seconds of ``pid`` and its live children (the onefile bootloader runs Python in a child)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for p in [str(pid), *children]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dist_startup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("exes", nargs="*", help="LABEL=PATH (default: venv and dist/small-yi)")
    args = p.parse_args()
    exes = dict(e.split("=", 1) for e in args.exes) or {
        "venv (`.venv/bin/small-yi`)": str(REPO / ".venv" / "bin" / "small-yi"),
        "single file (`dist/small-yi`)": str(REPO / "dist" / "small-yi"),
    }
    ws = Path(tempfile.mkdtemp(prefix="small-yi-startup-"))
    first = next(iter(exes.values()))
    subprocess.run([first, "init", "--config", "config.yaml"], cwd=ws, check=True, capture_output=True)
    subprocess.run([first, "run", "--hosts", "local", "--cmd", "true"], cwd=ws, check=True, capture_output=True)

    commands: dict[str, Callable[[str], Timed]] = {
        "`--version`": lambda exe: run_timed([exe, "--version"], cwd=ws),
        "`run --hosts local --cmd true`": lambda exe: run_timed([exe, "run", "--hosts", "local", "--cmd", "true"], cwd=ws),
        "`serve` until `/healthz` answers": lambda exe: serve_until_healthy(exe, ws),
    }
    got: dict[tuple[str, str], list[Timed]] = {}
    for _ in range(args.rounds):
        for cmd, fn in commands.items():
            for label, exe in exes.items():
                t = fn(exe)
                if t.rc != 0:
                    raise SystemExit(f"{label} {cmd} failed: {t.tail()}")
                got.setdefault((cmd, label), []).append(t)

    print("| command | executable | wall s, median (min-max) | CPU s, median (min-max) |")
    print("|---|---|---|---|")
    for (cmd, label), runs in got.items():
        print(f"| {cmd} | {label} | {spread([r.wall for r in runs])} | {spread([r.cpu for r in runs])} |")
    sizes = ", ".join(f"{label} {os.path.getsize(exe) / 1e6:.1f} MB" for label, exe in exes.items())
    print(f"\nSizes: {sizes}. {args.rounds} rounds; load average at the end {os.getloadavg()[0]:.1f}")


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


if __name__ == "__main__":
    main()
