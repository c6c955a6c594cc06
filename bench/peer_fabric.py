"""fabric 3 (paramiko) running one command on every host of a fleet folder with a ThreadingGroup.

    PEERS_VENV/bin/python bench/peer_fabric.py FLEET_DIR CMD

Prints ``ok K/N S.SSSs``: hosts that exited 0 with output, and the wall time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from fabric import ThreadingGroup
from fabric.exceptions import GroupException


def main(folder: Path, cmd: str) -> None:
    meta = json.loads((folder / "fleet.json").read_text())
    addresses = [line.split()[1] for line in (folder / "hosts.txt").read_text().splitlines() if line.strip()]
    started = time.perf_counter()
    group = ThreadingGroup(*addresses, user=meta["user"], port=meta["port"],
                           connect_kwargs={"key_filename": meta["key"]})
    try:
        results = group.run(cmd, hide=True, warn=True)
    except GroupException as exc:  # some hosts failed: the rest are still counted
        results = exc.result
    ok = sum(1 for r in results.values() if not isinstance(r, Exception) and r.ok and r.stdout)
    print(f"ok {ok}/{len(addresses)} {time.perf_counter() - started:.3f}s")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
