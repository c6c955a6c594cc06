"""Hostile hosts through the API and the CLI: each ends with the right status, the others are unaffected."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smallyi.testing import Behaviour, HostileFleet
from support import Server, cli, start_server, write_config

EXPECTED = {
    Behaviour.SHELL: ("success", ""),
    Behaviour.HANG: ("timeout", "timed out"),
    Behaviour.REFUSE: ("unreachable", "refused"),
    Behaviour.WRONG_HOST_KEY: ("unreachable", "host key"),
    Behaviour.REJECT_KEY: ("unreachable", "authentication failed"),
    Behaviour.DROP: ("unreachable", ""),
    Behaviour.BINARY: ("success", ""),
    Behaviour.NO_EOF: ("success", ""),
    Behaviour.FLOOD: ("success", ""),
}


class _Hostiles:
    """Hostile asyncssh hosts served from a background event loop, so a server subprocess can reach them."""

    def __init__(self, folder: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fleet = self._call(self._make(folder))
        self.hosts = {b: self._call(self.fleet.start(b, flood_bytes=20 * 1024 * 1024 if b is Behaviour.FLOOD else 0))
                      for b in EXPECTED}

    async def _make(self, folder: Path) -> HostileFleet:
        return HostileFleet(folder)

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self._call(self.fleet.close())
        self._call(self._cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _cancel_rest(self) -> None:
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[tuple[Server, _Hostiles]]:
    hostiles = _Hostiles(tmp_path / "hostile")
    ssh = (f"ssh:\n  user: tester\n  private_key: {hostiles.fleet.key_path}\n"
           f"  known_hosts: {hostiles.fleet.known_hosts_path}\n  connect_timeout: 3s\n"
           "execution:\n  kill_grace: 500ms\n")
    cfg = write_config(tmp_path, extra=ssh)
    srv = start_server(cfg)
    with srv.client() as c:
        body = [{"name": h.name, "address": "127.0.0.1", "port": h.port, "groups": ["hostile"]}
                for h in hostiles.hosts.values()]
        assert c.post("/api/v1/hosts", json=body).status_code in (200, 201)
    yield srv, hostiles
    srv.stop()
    hostiles.close()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_hostile_hosts_through_the_api(hostile_server: tuple[Server, _Hostiles]) -> None:
    """One task over every kind of hostile host: each status and reason right, in time, server memory bounded."""
    srv, hostiles = hostile_server
    before = _rss_kb(srv.proc.pid)
    with srv.client() as c:
        t0 = time.monotonic()
        task = c.post("/api/v1/tasks", json={"target": {"group": "hostile"}, "cmd": "echo hi", "timeout": "3s"}).json()
        while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] in ("queued", "running"):
            assert time.monotonic() - t0 < 60, "task did not finish"
            time.sleep(0.2)
        results = {r["host"]: r for r in c.get(f"/api/v1/tasks/{task['id']}/results", params={"limit": 100}).json()["items"]}
    grown_mb = (_rss_kb(srv.proc.pid) - before) / 1024
    for behaviour, (status, reason) in EXPECTED.items():
        r = results[hostiles.hosts[behaviour].name]
        assert r["status"] == status, (behaviour, r)
        assert reason in r["reason"], (behaviour, r["reason"])
    flood = results[hostiles.hosts[Behaviour.FLOOD].name]
    assert flood["truncated"] and flood["stdout_bytes"] >= 20 * 1024 * 1024
    assert "hi" in results[hostiles.hosts[Behaviour.SHELL].name]["stdout"]
    assert "\ufffd" in results[hostiles.hosts[Behaviour.BINARY].name]["stdout"]
    assert grown_mb < 50, f"server RSS grew {grown_mb:.0f} MB"


@pytest.mark.slow
def test_hostile_hosts_through_the_cli(hostile_server: tuple[Server, _Hostiles]) -> None:
    """The CLI reports the same statuses for hostile hosts and exits 4: some hosts were unreachable, the
    worst outcome (it wins over timed out, 3, and failed, 1)."""
    srv, hostiles = hostile_server
    r = cli("run", "--group", "hostile", "--cmd", "echo hi", "--timeout", "3s", "--quiet", "--output", "json",
            config=srv.config, timeout=120)
    assert r.returncode == 4, r.stderr
    got = {x["host"]: x["status"] for x in json.loads(r.stdout)["results"]}
    assert got == {hostiles.hosts[b].name: s for b, (s, _) in EXPECTED.items()}
