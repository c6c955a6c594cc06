"""The web terminal's config (``terminal.idle_timeout``, ``terminal.max_recording``) and the built-in
``local`` host's shell on the server, through the WebSocket of a real server: who may open it, that it
is a real terminal (size, Ctrl+C), that it does not inherit the server's environment, that closing it
ends the shell, and that it is recorded like an SSH session."""

from __future__ import annotations

import json
import os
import pwd
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets.sync.client as ws_client

from support import ADMIN_HASH, ADMIN_PASSWORD, Server, start_server, write_config

pytestmark = [pytest.mark.slow]

USERS = f"""auth:
  users:
    - username: admin
      password_hash: "{ADMIN_HASH}"
    - username: op-web
      password_hash: "{ADMIN_HASH}"
      role: operator
      groups: [web]
    - username: op-local
      password_hash: "{ADMIN_HASH}"
      role: operator
      groups: [local]
"""
SECRET = "not-for-the-shell-6d1f"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("terminal-local")
    cfg = write_config(folder, users=USERS, extra="terminal:\n  idle_timeout: 4s\n  max_recording: 64KiB\n")
    srv = start_server(cfg, env={"SMALLYI_TEST_SECRET": SECRET})
    yield srv
    srv.stop()


def connect(server: Server, token: str, **query: object) -> ws_client.ClientConnection:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    url = server.url.replace("http", "ws") + f"/api/v1/terminal/connect?{qs}"
    return ws_client.connect(url, subprotocols=[f"bearer.{token}"], open_timeout=10)  # type: ignore[list-item]


def send(ws: ws_client.ClientConnection, text: str) -> None:
    ws.send(json.dumps({"type": "input", "data": text}))


def read_until(ws: ws_client.ClientConnection, pattern: str, timeout: float = 15) -> tuple[str, list[dict]]:
    """Output up to a match of ``pattern`` (a regex), and the other messages seen on the way."""
    seen, others = "", []
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen):
        msg = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
        if msg["type"] == "output":
            seen += msg["data"]
        elif msg["type"] in ("closed", "error"):
            raise AssertionError(f"session ended before {pattern!r}: {msg}; output: {seen[-500:]!r}")
        else:
            others.append(msg)
    return seen, others


def until(ws: ws_client.ClientConnection, kind: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
        if msg["type"] == kind:
            return msg


def test_local_shell_is_a_real_terminal_on_the_server(server: Server) -> None:
    """Admin opens host local: the server user's shell on a PTY that takes sizes and Ctrl+C, without the
    server's environment; closing ends the shell; the session is recorded with the server user."""
    token = server.login()
    with connect(server, token, host="local", cols=100, rows=30) as ws:
        ready = until(ws, "ready")
        session = ready["session"]
        assert (session["host"], session["login_user"]) == ("local", pwd.getpwuid(os.getuid()).pw_name)
        send(ws, "echo local-$((6*7)) pid-$$ [$SMALLYI_TEST_SECRET] $(stty size)\r")
        out, _ = read_until(ws, r"pid-\d+ \[\S*\] \d+ \d+")
        assert "local-42" in out and SECRET not in out and "[] 30 100" in out
        pid = int(re.findall(r"pid-(\d+)", out)[-1])
        ws.send(json.dumps({"type": "resize", "cols": 132, "rows": 40}))
        send(ws, "stty size\r")
        read_until(ws, "40 132")
        send(ws, "sleep 30; echo not-$((9*9))-interrupted\r")
        time.sleep(0.5)
        started = time.monotonic()
        send(ws, "\x03")
        send(ws, "echo after-$((1+1))\r")
        out, _ = read_until(ws, "after-2")
        assert time.monotonic() - started < 5 and "not-81-interrupted" not in out
        ws.send(json.dumps({"type": "close"}))
        assert until(ws, "closed")["reason"] == "closed by the user"
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"the shell {pid} outlived its session"
        time.sleep(0.1)
    with server.client(token) as c:
        row = c.get(f"/api/v1/terminal/sessions/{session['id']}").json()
        assert row["status"] == "closed" and row["host"] == "local"
        rec = c.get(f"/api/v1/terminal/sessions/{session['id']}/recording").text
    assert "local-42" in "".join(e[2] for e in map(json.loads, rec.splitlines()[1:]) if e[1] == "o")


def test_the_exit_status_of_a_local_shell_is_recorded(server: Server) -> None:
    """`exit 5` in the local shell ends the session with that status."""
    with connect(server, server.login(), host="local") as ws:
        until(ws, "ready")
        send(ws, "exit 5\r")
        closed = until(ws, "closed")
    assert closed["status"] == "closed" and "status 5" in closed["reason"]


def test_only_terminal_open_on_group_local_opens_it(server: Server) -> None:
    """An operator over group web is refused host local's terminal and commands, even once local is also
    put in group web; an operator over group local gets it."""
    with server.client() as admin:
        r = admin.patch("/api/v1/hosts/local", json={"groups": ["local", "web"]})
        assert r.status_code == 200 and r.json()["groups"] == ["local", "web"]
    with connect(server, server.login("op-web", ADMIN_PASSWORD), host="local") as ws:
        msg = json.loads(ws.recv(timeout=10))
        assert msg["type"] == "error" and "terminal.open only on hosts in group(s) web" in msg["message"]
    with connect(server, server.login("op-local", ADMIN_PASSWORD), host="local") as ws:
        assert until(ws, "ready")["session"]["user"] == "op-local"
        send(ws, "echo op-$((40+2))\r")
        read_until(ws, "op-42")
    # nor may op-web run commands there: for every permission the server counts as in group local only
    with server.client(server.login("op-web", ADMIN_PASSWORD)) as c:
        for target in ({"hosts": ["local"]}, {"group": "web"}):
            r = c.post("/api/v1/tasks", json={"target": target, "cmd": "id"})
            assert r.status_code == 403 and "not on local" in r.json()["error"]["message"], r.text


def test_the_configured_idle_timeout_closes_a_session(server: Server) -> None:
    """terminal.idle_timeout (4s here) closes a session nobody types into, recorded as `idle`; a client
    cannot ask for more than the config allows."""
    token = server.login()
    with connect(server, token, host="local", idle=3600) as ws:
        ready = until(ws, "ready")
        assert ready["idle_timeout"] == 4
        started = time.monotonic()
        closed = until(ws, "closed", timeout=20)
    assert closed["status"] == "idle" and "4s" in closed["reason"]
    assert 3 < time.monotonic() - started < 12
    with server.client(token) as c:
        assert c.get(f"/api/v1/terminal/sessions/{ready['session']['id']}").json()["status"] == "idle"


def test_the_recording_stops_at_max_recording_with_a_notice(server: Server) -> None:
    """Past terminal.max_recording (64KiB here) the user is told once, the session goes on, and the
    recording stays within the cap, ending with a marker that says it was cut."""
    token = server.login()
    with connect(server, token, host="local") as ws:
        session = until(ws, "ready")["session"]
        send(ws, "head -c 200000 /dev/zero | tr '\\0' x; echo; echo big-$((3*3))\r")
        _, others = read_until(ws, "big-9", timeout=30)
        notices = [m for m in others if m["type"] == "notice"]
        assert len(notices) == 1 and "64KiB" in notices[0]["message"]
        assert "terminal.max_recording" in notices[0]["message"]
        send(ws, "echo still-$((1+1))\r")
        _, later = read_until(ws, "still-2")
        assert not [m for m in later if m["type"] == "notice"]
        ws.send(json.dumps({"type": "close"}))
        until(ws, "closed")
    with server.client(token) as c:
        row = c.get(f"/api/v1/terminal/sessions/{session['id']}").json()
        rec = c.get(f"/api/v1/terminal/sessions/{session['id']}/recording").text
    assert row["recording_truncated"] and row["output_bytes"] > 200_000
    assert len(rec.encode()) <= 64 * 1024 + 200
    last = json.loads(rec.splitlines()[-1])
    assert last[1] == "m" and "limit" in last[2]


def test_terminal_local_false_turns_the_local_shell_off(tmp_path: Path) -> None:
    """With terminal.local: false nobody, not even an admin, opens host local's terminal."""
    srv = start_server(write_config(tmp_path, extra="terminal:\n  local: false\n"))
    try:
        with connect(srv, srv.login(), host="local") as ws:
            msg = json.loads(ws.recv(timeout=10))
        assert msg["type"] == "error" and "terminal.local: false" in msg["message"]
        with srv.client() as c:
            assert c.get("/api/v1/terminal/sessions").json()["total"] == 0
    finally:
        srv.stop()
