"""Open WebSockets end with the login behind them (security issue: "session expiry and logout
everywhere"): a logout closes the terminal it opened and ends its shell, a revoked API token closes the
live output it follows, an expired session closes its socket — each with code 4401 and the reason, and
an audit record of the terminal's close. A socket whose login still holds stays open."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed

from support import ADMIN_HASH, Server, start_server, write_config

pytestmark = [pytest.mark.slow]

USERS = f"""auth:
  session_recheck: 0.5s
  users:
    - username: admin
      password_hash: "{ADMIN_HASH}"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(write_config(tmp_path_factory.mktemp("sockets"), users=USERS))
    yield srv
    srv.stop()


def connect(server: Server, path: str, token: str) -> ws_client.ClientConnection:
    url = server.url.replace("http", "ws") + path
    return ws_client.connect(url, subprotocols=[f"bearer.{token}"], open_timeout=10)  # type: ignore[list-item]


def shell(server: Server, token: str) -> ws_client.ClientConnection:
    return connect(server, "/api/v1/terminal/connect?host=local", token)


def started(ws: ws_client.ClientConnection) -> tuple[int, str]:
    """The pid of the terminal's shell, and the session id."""
    session, seen = "", ""
    deadline = time.monotonic() + 15
    ws.send(json.dumps({"type": "input", "data": "echo pid-$$\r"}))
    while not (m := re.search(r"pid-(\d+)", seen)):
        msg = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
        if msg["type"] == "ready":
            session = str(msg["session"]["id"])
        elif msg["type"] == "output":
            seen += msg["data"]
    return int(m.group(1)), session


def closed_within(ws: ws_client.ClientConnection, seconds: float) -> tuple[int | None, str, float]:
    """Read until the server closes the socket: (close code, reason, seconds it took)."""
    t0 = time.monotonic()
    with pytest.raises(ConnectionClosed) as exc:
        while True:
            ws.recv(timeout=max(t0 + seconds - time.monotonic(), 0.1))
    rcvd = exc.value.rcvd
    return (rcvd.code if rcvd else None), (rcvd.reason if rcvd else ""), time.monotonic() - t0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ends(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def test_logout_closes_the_terminal_it_opened_and_ends_the_shell(server: Server) -> None:
    token, other = server.login(), server.login()
    with shell(server, token) as ws, shell(server, other) as kept:
        (pid, session), (kept_pid, _) = started(ws), started(kept)
        assert httpx.post(f"{server.url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
                          ).status_code == 204
        code, reason, took = closed_within(ws, 10)
        assert code == 4401 and "logged out" in reason and took < 5
        assert ends(pid), "the shell of a logged-out terminal still runs"
        # the other login's terminal is untouched and still works
        kept.send(json.dumps({"type": "input", "data": "echo still-$((40+2))\r"}))
        seen = ""
        while "still-42" not in seen:
            msg = json.loads(kept.recv(timeout=10))
            seen += msg.get("data", "") if msg["type"] == "output" else ""
        assert alive(kept_pid)
    with server.client(other) as c:
        rec = c.get("/api/v1/audit", params={"action": "terminal.close", "limit": 20}).json()["items"]
    closes = [r for r in rec if r["detail"].get("session") == int(session)]
    assert closes and "the login ended" in closes[0]["detail"]["reason"], rec


def test_a_revoked_api_token_closes_the_output_it_follows(server: Server) -> None:
    with server.client() as c:
        made = c.post("/api/v1/auth/tokens", json={"name": "ci-follow"}).json()
        task = c.post("/api/v1/tasks", json={"target": {"hosts": ["local"]}, "cmd": "sleep 20"}).json()
        try:
            with connect(server, f"/api/v1/tasks/{task['id']}/stream", made["token"]) as ws:
                quiet = time.monotonic() + 1.5  # a few checks pass while the token holds: the socket stays open
                while time.monotonic() < quiet:
                    with contextlib.suppress(TimeoutError):
                        assert json.loads(ws.recv(timeout=0.2))["type"] == "events"
                assert c.delete(f"/api/v1/auth/tokens/{made['id']}").status_code == 204
                code, reason, took = closed_within(ws, 10)
                assert code == 4401 and "revoked" in reason and took < 5
        finally:
            c.post(f"/api/v1/tasks/{task['id']}/cancel")


def test_an_expired_session_closes_its_socket(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("expiring")
    srv = start_server(write_config(folder, users=USERS.replace("auth:\n", "auth:\n  session_ttl: 3s\n")))
    try:
        token = srv.login()
        with shell(srv, token) as ws:
            pid, _ = started(ws)
            code, reason, took = closed_within(ws, 10)
        assert code == 4401 and "expired" in reason and took < 10
        assert ends(pid)
    finally:
        srv.stop()
