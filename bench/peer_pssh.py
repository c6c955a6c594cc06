"""parallel-ssh (libssh2) running one command on every host of a fleet folder.

    PEERS_VENV/bin/python bench/peer_pssh.py FLEET_DIR CMD [POOL]      (POOL: hosts at once, default 100)

Prints ``ok K/N S.SSSs``: hosts that exited 0 with output, and the wall time of connect + run + join.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pssh.clients import ParallelSSHClient


def main(folder: Path, cmd: str, pool: int) -> None:
    meta = json.loads((folder / "fleet.json").read_text())
    addresses = [line.split()[1] for line in (folder / "hosts.txt").read_text().splitlines() if line.strip()]
    started = time.perf_counter()
    client = ParallelSSHClient(addresses, user=meta["user"], port=meta["port"], pkey=meta["key"], pool_size=pool,
                               timeout=60)
    outputs = client.run_command(cmd, stop_on_errors=False)
    client.join(outputs)
    ok = sum(1 for out in outputs if out.exception is None and out.exit_code == 0 and any(True for _ in out.stdout))
    print(f"ok {ok}/{len(addresses)} {time.perf_counter() - started:.3f}s")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100)
