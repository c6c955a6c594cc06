"""Helpers for the tests: configs on disk, a real server on a free port, a logged-in HTTP client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bcrypt
import httpx

ADMIN_PASSWORD = "correct horse battery staple"
# cost 4 keeps the suite fast; the format is the same as cost 12
ADMIN_HASH = bcrypt.hashpw(ADMIN_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
SMALL_YI = str(Path(sys.executable).with_name("small-yi"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, *, database: str | None = None, extra: str = "", users: str | None = None) -> Path:
    """A config file in ``folder``: SQLite in ``folder/data`` unless ``database`` (a YAML block) says otherwise."""
    db = database or "database:\n  driver: sqlite3\n  source: ./data/small-yi.db\n"
    users = users if users is not None else (
        f"auth:\n  users:\n    - username: admin\n      password_hash: \"{ADMIN_HASH}\"\n"
    )
    path = folder / "config.yaml"
    path.write_text(db + users + extra)
    return path


if TYPE_CHECKING:
    from smallyi.bus.base import Bus, Event, Subscription

#: the ``open_bus`` fixture: ``await open_bus(stream_maxlen=..., maxsize=...)`` → a bus of the test's kind
BusOpener = Callable[..., Awaitable["Bus"]]


async def drain(sub: Subscription, timeout: float = 20) -> list[Event]:
    """Every event of a bus subscription until it ends (TimeoutError past ``timeout`` seconds)."""
    import asyncio

    async def take() -> list[Event]:
        return [e async for e in sub]

    return await asyncio.wait_for(take(), timeout)


@dataclass(frozen=True)
class RedisSpace:
    """Where a test may use Redis (the ``redis_space`` fixture): the server's URL, a key prefix of its own."""

    url: str
    prefix: str


@dataclass
class Server:
    url: str
    config: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        r = httpx.post(f"{self.url}/api/v1/auth/login", json={"username": username, "password": password})
        r.raise_for_status()
        return str(r.json()["token"])

    def client(self, token: str | None = None) -> httpx.Client:
        token = token or self.login()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(config: Path, *, port: int | None = None, env: dict[str, str] | None = None,
                 timeout: float = 90.0) -> Server:
    """``small-yi serve`` as a subprocess on a free port; returns once /healthz answers."""
    port = port or free_port()
    log = config.parent / f"server-{port}.log"
    fh = log.open("wb")
    proc = subprocess.Popen(
        [SMALL_YI, "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--log-level", "info"],
        stdout=fh, stderr=subprocess.STDOUT, cwd=config.parent, env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(url, config, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not answer within {timeout}s:\n{log.read_text(errors='replace')}")


def cli(*args: str, config: Path | None = None, input: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``small-yi ARGS`` (with ``--config`` when given) and capture its output."""
    argv = [SMALL_YI, *args]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def starlette_test_client() -> type:
    """Starlette's TestClient (it warns about plain httpx on import; the suite turns warnings into errors)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient


def missing(message: str) -> None:
    """A prerequisite is missing: CI installs every one (.ci/run), so there it is a failure; elsewhere a skip."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def task_stream(server: Server, token: str, task_id: int, after: int = 0,
                stop_after: int | None = None) -> list[dict[str, Any]]:
    """Events of a task's WebSocket stream until its end (or the first ``stop_after``)."""
    import websockets.sync.client as ws_client

    events: list[dict[str, Any]] = []
    url = server.url.replace("http", "ws") + f"/api/v1/tasks/{task_id}/stream?after={after}"
    with ws_client.connect(url, subprotocols=[f"bearer.{token}"], open_timeout=10) as ws:  # type: ignore[list-item]
        for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "end":
                break
            events.extend(msg["events"])
            if stop_after is not None and len(events) >= stop_after:
                return events[:stop_after]
    return events
