"""A host that prints 100 MB, through a real server (not just the engine): the task ends, the other host
in it is unaffected, the archive keeps a bounded head and tail with the cut counted, and the server's
memory stays bounded — even with a WebSocket viewer that never reads."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from smallyi.testing import LOOPBACK, TEST_USER, Behaviour, HostileFleet
from support import start_server, write_config

pytestmark = [pytest.mark.slow]

FLOOD = 100 * 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_100mb_host_through_the_server_in_bounded_memory(tmp_path: Path) -> None:
    async with HostileFleet(tmp_path / "hostile") as hf:
        flood = await hf.start(Behaviour.FLOOD, "flood", flood_bytes=FLOOD)
        calm = await hf.start(Behaviour.SHELL, "calm")
        cfg = write_config(tmp_path, extra=(
            f"ssh:\n  user: {TEST_USER}\n  private_key: {hf.key_path}\n  known_hosts: {hf.known_hosts_path}\n"
            "output:\n  head_bytes: 65536\n  tail_bytes: 65536\n"))
        srv = await asyncio.to_thread(start_server, cfg)
        try:
            token = (await asyncio.to_thread(srv.login))
            async with httpx.AsyncClient(base_url=srv.url, headers={"Authorization": f"Bearer {token}"},
                                         timeout=30) as c:
                r = await c.post("/api/v1/hosts", json=[
                    {"name": h.name, "address": LOOPBACK, "port": h.port, "user": TEST_USER} for h in (flood, calm)])
                assert r.status_code in (200, 201), r.text
                await asyncio.sleep(1)  # the server settles before the baseline
                base = rss(srv.proc.pid)
                task = (await c.post("/api/v1/tasks", json={"target": {"hosts": ["flood", "calm"]},
                                                            "cmd": "echo calm-$((6*7))", "timeout": "180s"})).json()
                url = srv.url.replace("http", "ws") + f"/api/v1/tasks/{task['id']}/stream"
                # a viewer that connects and then never reads: the server must not buffer 100 MB for it
                async with websockets.connect(url, subprotocols=[websockets.Subprotocol(f"bearer.{token}")],
                                              max_size=None, max_queue=1) as _stalled:
                    peak, t0 = base, time.monotonic()
                    while True:
                        peak = max(peak, rss(srv.proc.pid))
                        got = (await c.get(f"/api/v1/tasks/{task['id']}")).json()
                        if got["status"] not in ("queued", "running"):
                            break
                        assert time.monotonic() - t0 < 240, f"the task did not end: {got}"
                        await asyncio.sleep(0.2)
                results = {r["host"]: r for r in (await c.get(f"/api/v1/tasks/{task['id']}/results")).json()["items"]}
        finally:
            await asyncio.to_thread(srv.stop)
    assert results["calm"]["status"] == "success" and "calm-42" in results["calm"]["stdout"]
    f: dict[str, Any] = results["flood"]
    assert f["status"] == "success", f
    assert f["stdout_bytes"] >= FLOOD and f["truncated"] and f["stdout_cut"] >= FLOOD - 2 * 65536 - 1024 * 64
    assert len(f["stdout"].encode()) < 2 * 65536 + 4096, len(f["stdout"])
    grew = peak - base
    assert grew < 80 * 1024 * 1024, f"the server grew {grew >> 20} MB while a host printed 100 MB"
    print(json.dumps({"server_rss_growth_mb": grew >> 20}))
