"""``python -m smallyi.testing fleet up N [DIR] | down [DIR] | status [DIR]``: the OpenSSH fleet by hand.

For the docs' demos and for running tests against one long-lived fleet (``SMALLYI_FLEET_DIR=DIR``).
DIR defaults to /tmp/small-yi-fleet and the port to 2222 (``--port 0``: a free one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smallyi.testing.fleet import DEMO_DIR, DEMO_PORT, Fleet, FleetError, stop_in


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smallyi.testing", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_subparsers(dest="what", required=True)
    fleet = what.add_parser("fleet", help="the OpenSSH fleet: one sshd, N hosts on 127.0.x.y")
    cmd = fleet.add_subparsers(dest="cmd", required=True)
    up = cmd.add_parser("up", help="start it (or re-describe a running one) with N hosts")
    up.add_argument("n", type=int, help="hosts: host-001 at 127.0.1.1, host-002 at 127.0.1.2, ...")
    up.add_argument("dir", nargs="?", type=Path, default=DEMO_DIR, help=f"its folder (default {DEMO_DIR})")
    up.add_argument("--port", type=int, default=DEMO_PORT, help=f"sshd's port (default {DEMO_PORT}; 0: a free one)")
    for name, text in (("down", "stop its sshd"), ("status", "say whether it runs (exit 1 if not)")):
        c = cmd.add_parser(name, help=text)
        c.add_argument("dir", nargs="?", type=Path, default=DEMO_DIR, help=f"its folder (default {DEMO_DIR})")
    a = p.parse_args(argv)
    try:
        if a.cmd == "up":
            return _up(a.n, a.dir, a.port)
        if a.cmd == "down":
            print("fleet down" if stop_in(a.dir) else f"no fleet running in {a.dir}")
            return 0
        return _status(a.dir)
    except FleetError as exc:
        print(f"fleet: {exc.message}", file=sys.stderr)
        return 1


def _up(n: int, directory: Path, port: int) -> int:
    try:
        running = Fleet.load(directory)
    except FleetError:
        running = None
    if running is not None and running.running() and port in (0, running.port):
        running.describe(n)
        print(f"fleet already up, now {running.summary()}")
        return 0
    fleet = Fleet.start(n, directory, port=port)
    print(f"fleet up: {fleet.summary()}")
    return 0


def _status(directory: Path) -> int:
    try:
        fleet = Fleet.load(directory)
    except FleetError:
        print(f"down: no fleet in {directory}")
        return 1
    print(("up: " if fleet.running() else "down: ") + fleet.summary())
    return 0 if fleet.running() else 1


if __name__ == "__main__":
    sys.exit(main())
