"""The live-latency floor: raw asyncssh in one process, reading the same command's lines on the same hosts.

    python bench/latency_floor.py FLEET_SUBSET_DIR CMD     # prints a JSON list of seconds, one per line

Connects to every host first (as the pooled server has), then runs CMD on all of them at once and
subtracts each printed ``$EPOCHREALTIME`` from the time its line arrived: what the fleet and this
machine allow before small-yi's server, bus and WebSocket add anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

import asyncssh


async def main(fleet: Path, cmd: str) -> list[float]:
    meta = json.loads((fleet / "fleet.json").read_text())
    hosts = [line.split() for line in (fleet / "hosts.txt").read_text().splitlines() if line.strip()]
    key = asyncssh.read_private_key(meta["key"])
    known = asyncssh.read_known_hosts(meta["known_hosts"])
    conns = await asyncio.gather(*[asyncssh.connect(addr, port=meta["port"], username=meta["user"], client_keys=[key],
                                                    known_hosts=known) for _name, addr in hosts])
    lat: list[float] = []

    async def one(conn: asyncssh.SSHClientConnection) -> None:
        async with conn.create_process(cmd) as proc:
            async for line in proc.stdout:
                now = time.time()
                with contextlib.suppress(ValueError):
                    lat.append(now - float(line))

    try:
        await asyncio.gather(*[one(c) for c in conns])
    finally:
        for c in conns:
            c.close()
    return lat


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))))
