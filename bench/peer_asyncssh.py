"""The floor every ratio is taken against: raw asyncssh running one command on every host, all at once.

    python bench/peer_asyncssh.py FLEET_DIR CMD [--rounds R] [--limit N]

FLEET_DIR is a fleet folder (or a subset of one): its fleet.json names the port, user, key and
known_hosts, its hosts.txt the hosts. Round 1 opens the connections (cold, a new process' cost);
rounds 2.. reuse them (warm: what a server keeping a pool pays). One line per round:
``round R ok K/N S.SSSs``. Runs in the peers' venv or small-yi's (it needs asyncssh only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import warnings
from pathlib import Path

# asyncssh touches cryptography's DSA names at import, and newer cryptography warns on each: noise on
# stderr that small-yi silences for itself too
warnings.filterwarnings("ignore", message="DSA is deprecated")

import asyncssh  # noqa: E402


async def main(folder: Path, cmd: str, rounds: int, limit: int) -> None:
    meta = json.loads((folder / "fleet.json").read_text())
    addresses = [line.split()[1] for line in (folder / "hosts.txt").read_text().splitlines() if line.strip()]
    key = asyncssh.read_private_key(meta["key"])
    known = asyncssh.read_known_hosts(meta["known_hosts"])
    gate = asyncio.Semaphore(limit or len(addresses) or 1)
    open_conns: dict[str, asyncssh.SSHClientConnection] = {}

    async def one(address: str) -> bool:
        async with gate:
            conn = open_conns.get(address)
            if conn is None:
                conn = await asyncssh.connect(address, port=meta["port"], username=meta["user"], client_keys=[key],
                                              known_hosts=known)
                open_conns[address] = conn
            result = await conn.run(cmd, check=False)
            return result.exit_status == 0 and bool(result.stdout)

    for rnd in range(1, rounds + 1):
        started = time.perf_counter()
        answers = await asyncio.gather(*(one(a) for a in addresses), return_exceptions=True)
        ok = sum(1 for answer in answers if answer is True)
        print(f"round {rnd} ok {ok}/{len(addresses)} {time.perf_counter() - started:.3f}s", flush=True)
    for conn in open_conns.values():
        conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fleet_dir", type=Path)
    p.add_argument("cmd")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="hosts at once (default: all)")
    a = p.parse_args()
    asyncio.run(main(a.fleet_dir, a.cmd, a.rounds, a.limit))
