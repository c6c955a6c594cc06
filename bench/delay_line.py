"""A TCP delay line for the benchmark's WAN rows: every byte crosses it DELAY ms late, in each direction.

    python bench/delay_line.py --listen-port P --to-port Q --delay-ms 10 [--pid-file FILE]

Listens on 0.0.0.0:P, so every 127.x.y.z address reaches it (a client from outside 127/8 is hung up on
at once), and forwards each connection to 127.0.0.1:Q, the fleet's sshd. Each chunk is stamped when it
is read and written at stamp + delay, in order: a stream keeps its throughput and only gains latency,
as over a WAN (this kernel has no netem to do it). Standard library only; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
from pathlib import Path

CHUNK = 1 << 16


async def carry(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``src`` to ``dst``, each chunk held until ``delay`` seconds after it arrived; EOF likewise."""
    loop = asyncio.get_running_loop()
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, chunk = await held.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not chunk:
                if dst.can_write_eof():
                    dst.write_eof()
                return
            dst.write(chunk)
            await dst.drain()

    releasing = asyncio.create_task(release())
    with contextlib.suppress(OSError):
        while chunk := await src.read(CHUNK):
            held.put_nowait((loop.time() + delay, chunk))
    held.put_nowait((loop.time() + delay, b""))
    with contextlib.suppress(OSError):
        await releasing


async def serve(listen_port: int, to_port: int, delay: float, pid_file: Path | None) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not peer or not ipaddress.ip_address(peer[0]).is_loopback:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", to_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(carry(reader, up_writer, delay), carry(up_reader, writer, delay),
                             return_exceptions=True)
        writer.close()
        up_writer.close()

    server = await asyncio.start_server(connection, "0.0.0.0", listen_port, backlog=4096)
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n")
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen-port", type=int, required=True)
    p.add_argument("--to-port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, required=True, help="added in each direction")
    p.add_argument("--pid-file", type=Path)
    a = p.parse_args()
    asyncio.run(serve(a.listen_port, a.to_port, a.delay_ms / 1000, a.pid_file))


if __name__ == "__main__":
    main()
