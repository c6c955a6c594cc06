"""The web terminal's API against a real server and real fleet hosts: the WebSocket shell, the session
records (who, which host, from where, when, how it ended) and the asciicast v2 recordings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from smallyi.terminal.recording import AsciicastRecorder
from smallyi.testing import Fleet
from support import Server, cli, start_server, write_config

HOST = "host-001"


@pytest.fixture(scope="module")
def term_server(tmp_path_factory: pytest.TempPathFactory, fleet_terminals: Fleet) -> Iterator[Server]:
    ssh_fleet = fleet_terminals
    folder = tmp_path_factory.mktemp("terminal")
    cfg = write_config(folder, extra=ssh_fleet.ssh_yaml())
    name, addr = ssh_fleet.hosts[0]
    assert name == HOST
    r = cli("hosts", "add", HOST, "--address", addr, "--port", str(ssh_fleet.port), "--group", "web", config=cfg)
    assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    yield srv
    srv.stop()


def connect(server: Server, token: str | None, **query: object) -> ws_client.ClientConnection:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    url = server.url.replace("http", "ws") + f"/api/v1/terminal/connect?{qs}"
    protocols = [f"bearer.{token}"] if token else None
    return ws_client.connect(url, subprotocols=protocols, open_timeout=10)  # type: ignore[arg-type]


def read_until(ws: ws_client.ClientConnection, needle: str, timeout: float = 15) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        msg = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
        if msg["type"] == "output":
            seen += msg["data"]
        elif msg["type"] in ("closed", "error"):
            raise AssertionError(f"session ended before {needle!r}: {msg}; output: {seen!r}")
    return seen


def last_message(ws: ws_client.ClientConnection, kind: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
        if msg["type"] == kind:
            return msg


pytestmark = [pytest.mark.fleet, pytest.mark.slow]


def test_a_shell_answers_is_resized_and_its_session_is_recorded(term_server: Server, fleet_terminals: Fleet) -> None:
    """A shell on a fleet host runs what is typed, takes a new size, and leaves a session record and a
    replayable asciicast v2 recording naming the user, host and client address."""
    token = term_server.login()
    with connect(term_server, token, host=HOST, cols=100, rows=30) as ws:
        ready = json.loads(ws.recv(timeout=15))
        assert ready["type"] == "ready"
        session = ready["session"]
        assert (session["user"], session["host"], session["status"]) == ("admin", HOST, "open")
        assert session["client_address"] == "127.0.0.1" and session["login_user"] == fleet_terminals.user
        ws.send(json.dumps({"type": "input", "data": "echo hello-$((6*7))\r"}))
        read_until(ws, "hello-42")
        ws.send(json.dumps({"type": "resize", "cols": 132, "rows": 40}))
        ws.send(json.dumps({"type": "input", "data": "stty size\r"}))
        read_until(ws, "40 132")
        ws.send(json.dumps({"type": "close"}))
        closed = last_message(ws, "closed")
        assert closed["reason"] == "closed by the user"
    with term_server.client(token) as c:
        row = c.get(f"/api/v1/terminal/sessions/{session['id']}").json()
        assert row["status"] == "closed" and row["ended_at"] and row["input_bytes"] > 0
        listed = c.get("/api/v1/terminal/sessions", params={"host": HOST}).json()
        assert session["id"] in [s["id"] for s in listed["items"]]
        rec = c.get(f"/api/v1/terminal/sessions/{session['id']}/recording")
    assert rec.headers["content-type"].startswith("application/x-asciicast")
    lines = rec.text.splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and (header["width"], header["height"]) == (100, 30)
    events = [json.loads(x) for x in lines[1:]]
    times = [e[0] for e in events]
    assert times == sorted(times)
    assert "hello-42" in "".join(e[2] for e in events if e[1] == "o")
    assert ["r", "132x40"] in [e[1:] for e in events]


def test_idle_sessions_are_closed(term_server: Server) -> None:
    """A shell nobody types into is closed after the idle timeout, and recorded as `idle`."""
    token = term_server.login()
    with connect(term_server, token, host=HOST, idle=1) as ws:
        ready = json.loads(ws.recv(timeout=15))
        closed = last_message(ws, "closed", timeout=20)
    assert closed["status"] == "idle"
    with term_server.client(token) as c:
        assert c.get(f"/api/v1/terminal/sessions/{ready['session']['id']}").json()["status"] == "idle"


def test_the_shell_exiting_ends_the_session(term_server: Server) -> None:
    """`exit` in the shell ends the session with the shell's status."""
    token = term_server.login()
    with connect(term_server, token, host=HOST) as ws:
        json.loads(ws.recv(timeout=15))
        ws.send(json.dumps({"type": "input", "data": "exit 7\r"}))
        closed = last_message(ws, "closed")
    assert closed["status"] == "closed" and "7" in closed["reason"]


def test_unknown_hosts_and_missing_login_are_refused(term_server: Server) -> None:
    """No token: the handshake is refused (403). An unknown host: an error message names it; no shell."""
    with pytest.raises(InvalidStatus) as info, connect(term_server, None, host=HOST):
        pass
    assert info.value.response.status_code == 403
    with connect(term_server, term_server.login(), host="nope-1") as ws:
        msg = json.loads(ws.recv(timeout=10))
    assert msg["type"] == "error" and "nope-1" in msg["message"]


def test_a_refused_terminal_line_is_not_run_and_is_audited(tmp_path: Path, fleet_terminals: Fleet) -> None:
    """With a deny rule, a typed `reboot` never reaches the shell: the user is told why, the next line runs,
    and the audit trail has a policy.deny record naming the session, the line and the reason."""
    policy = "policy:\n  rules:\n    - name: destructive\n      deny: [reboot]\n      reason: not from here\n"
    cfg = write_config(tmp_path, extra=fleet_terminals.ssh_yaml() + policy)
    name, addr = fleet_terminals.hosts[0]
    assert cli("hosts", "add", name, "--address", addr, "--port", str(fleet_terminals.port), config=cfg).returncode == 0
    srv = start_server(cfg)
    try:
        token = srv.login()
        with connect(srv, token, host=name) as ws:
            session = json.loads(ws.recv(timeout=15))["session"]
            ws.send(json.dumps({"type": "input", "data": "reboot\r"}))
            assert "[small-yi] " in read_until(ws, "not from here")
            ws.send(json.dumps({"type": "input", "data": "echo still-$((40+2))\r"}))
            read_until(ws, "still-42")
            ws.send(json.dumps({"type": "close"}))
            last_message(ws, "closed")
        with srv.client(token) as c:
            rows = c.get("/api/v1/audit", params={"action": "policy.deny"}).json()["items"]
        assert len(rows) == 1
        row = rows[0]
        assert (row["actor"], row["target"], row["result"]) == ("admin", name, "denied")
        assert row["detail"]["kind"] == "terminal" and row["detail"]["command"] == "reboot"
        assert row["detail"]["session"] == session["id"] and "not from here" in row["detail"]["reason"]
    finally:
        srv.stop()


def test_the_recorder_keeps_split_characters_and_stops_at_its_limit() -> None:
    """A UTF-8 character split across reads stays whole; past the size limit the recording says it was cut."""
    t0 = datetime(2026, 11, 27, tzinfo=UTC)
    rec = AsciicastRecorder(cols=80, rows=24, started=t0, limit=400)
    word = "你好".encode()
    assert rec.output(word[:2], t0) == ""
    assert rec.output(word[2:], t0) == "你好"
    for _ in range(50):
        rec.output(b"x" * 20, t0)
    lines = rec.drain()
    assert json.loads(lines[0])["version"] == 2
    assert json.loads(lines[1])[2] == "你好"
    assert rec.truncated and json.loads(lines[-1])[1] == "m"
    assert rec.size <= 400 + 100


def test_sessions_left_open_by_a_dead_server_are_marked_interrupted(tmp_path: Path, fleet_terminals: Fleet) -> None:
    """A server killed during a terminal session leaves it `interrupted` (with an end time) at the next start."""
    cfg = write_config(tmp_path, extra=fleet_terminals.ssh_yaml())
    name, addr = fleet_terminals.hosts[0]
    assert cli("hosts", "add", name, "--address", addr, "--port", str(fleet_terminals.port), config=cfg).returncode == 0
    srv = start_server(cfg)
    token = srv.login()
    with connect(srv, token, host=name) as ws:
        sid = json.loads(ws.recv(timeout=15))["session"]["id"]
        srv.proc.kill()
        srv.proc.wait()
    srv2 = start_server(cfg)
    try:
        with srv2.client() as c:
            row = c.get(f"/api/v1/terminal/sessions/{sid}").json()
        assert row["status"] == "interrupted" and row["ended_at"]
    finally:
        srv2.stop()
