"""The audit trail's external anchor and the cross-check of rows against records, on the SQLite database of
a real server: a trail rewritten so that the database alone still verifies (MACs stripped with the boundary
moved past the end; the newest records cut and an older head put back) fails `small-yi audit verify`,
which names the anchor it checked; tasks and terminal sessions without their records are named; the anchor
is also sent to syslog and a webhook."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import Server, cli, free_port, start_server, write_config

pytestmark = [pytest.mark.slow]


def _db(cfg: Path) -> sqlite3.Connection:
    return sqlite3.connect(cfg.parent / "data" / "small-yi.db")


def _work(srv: Server, tasks: int) -> list[int]:
    """Log in and run ``tasks`` commands on the server itself, each to its end; their ids."""
    ids = []
    with srv.client() as c:
        for i in range(tasks):
            r = c.post("/api/v1/tasks", json={"target": {"hosts": ["local"]}, "cmd": f"echo anchor-{i}"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        for tid in ids:
            deadline = time.monotonic() + 60
            while c.get(f"/api/v1/tasks/{tid}").json()["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
    return ids


def _served(cfg: Path, tasks: int) -> list[int]:
    srv = start_server(cfg)
    try:
        return _work(srv, tasks)
    finally:
        srv.stop()


def _verify(cfg: Path) -> tuple[int, dict[str, Any]]:
    r = cli("audit", "verify", "--output", "json", config=cfg)
    return r.returncode, json.loads(r.stdout)


def _top(cfg: Path) -> int:
    with _db(cfg) as db:
        return int(db.execute("SELECT max(id) FROM audit_log").fetchone()[0])


def test_verify_names_the_anchor_it_checked(tmp_path: Path) -> None:
    """On an untouched trail verify passes, and says which anchor it held the trail against (file, record,
    when it was written) and how many tasks it cross-checked."""
    cfg = write_config(tmp_path)
    _served(cfg, 2)
    anchor = json.loads((tmp_path / "data" / "audit.anchor").read_text())
    assert anchor["seq"] == _top(cfg)  # the server's last record, anchored as it stopped
    code, rep = _verify(cfg)
    assert code == 0, rep
    assert rep["anchor"] == {"file": str(tmp_path / "data" / "audit.anchor"), "seq": anchor["seq"],
                             "hash": anchor["hash"], "at": anchor["at"], "matched": True}
    assert rep["crosscheck"]["tasks"] == 2
    text = cli("audit", "verify", config=cfg)
    assert text.returncode == 0
    assert f"anchor {tmp_path / 'data' / 'audit.anchor'}: record {anchor['seq']} hash {anchor['hash']}" in text.stdout
    assert "matches" in text.stdout and "2 tasks" in text.stdout


def test_stripped_macs_with_the_boundary_moved_past_the_end_fail_verify(tmp_path: Path) -> None:
    """Blanking every MAC (records and head) and setting mac_from past the end made the trail look older than
    MACs, and verify passed. Now it fails, naming the moved boundary and the anchored record's missing MAC,
    and still fails after the server has written more records over it (they do not sign it back)."""
    cfg = write_config(tmp_path)
    _served(cfg, 2)
    top = _top(cfg)
    with _db(cfg) as db:
        db.execute("UPDATE audit_log SET mac_version = 0, mac_key = '', mac = ''")
        db.execute("UPDATE audit_head SET mac_from = seq + 1, mac_key = '', mac = ''")
    code, rep = _verify(cfg)
    assert code == 1, rep
    boundary = [f["message"] for f in rep["findings"] if f["kind"] == "boundary"]
    assert any(f"from id {top + 1} on" in m and "says from 1 on" in m for m in boundary), rep["findings"]
    assert any(f"past the trail's end ({top})" in m for m in boundary), rep["findings"]
    forged = [f for f in rep["findings"] if f["kind"] == "forged"]
    assert [f["first"] for f in forged if "no longer carries the MAC" in f["message"]] == [top]
    assert rep["anchor"]["seq"] == top
    _served(cfg, 1)  # the trail goes on
    code, rep = _verify(cfg)
    assert code == 1 and {"boundary", "forged"} <= {f["kind"] for f in rep["findings"]}, rep
    assert rep["anchor"]["seq"] == top  # not moved over the stripped trail


def test_cutting_the_newest_records_and_putting_back_an_older_head_fails_verify(tmp_path: Path) -> None:
    """Deleting the newest records and restoring a head row saved earlier (its MAC valid then) verified as
    intact. Now verify fails, naming the records cut and the anchor that vouches for them, and the tasks whose
    records were cut."""
    cfg = write_config(tmp_path)
    srv = start_server(cfg)
    try:
        _work(srv, 1)
        with _db(cfg) as db:
            saved = db.execute("SELECT seq, hash, anchor_seq, anchor_hash, mac_from, mac_key, mac FROM audit_head"
                               ).fetchone()
        later = _work(srv, 2)
    finally:
        srv.stop()
    top = _top(cfg)
    with _db(cfg) as db:
        db.execute("DELETE FROM audit_log WHERE id > ?", (saved[0],))
        db.execute("UPDATE audit_head SET seq = ?, hash = ?, anchor_seq = ?, anchor_hash = ?, mac_from = ?, "
                   "mac_key = ?, mac = ?", saved)
    code, rep = _verify(cfg)
    assert code == 1, rep
    cut = [f for f in rep["findings"] if f["kind"] == "truncated"]
    assert [(f["first"], f["last"]) for f in cut] == [(saved[0] + 1, top)], rep["findings"]
    assert str(tmp_path / "data" / "audit.anchor") in cut[0]["message"] and rep["anchor"]["matched"] is False
    assert {f["subject"] for f in rep["findings"] if f["kind"] == "unrecorded"} == {f"task {t}" for t in later}
    text = cli("audit", "verify", config=cfg)
    assert text.returncode == 1 and "does NOT match" in text.stdout and "were cut from the end" in text.stdout
    _served(cfg, 3)  # the server goes on past the anchored id, over the old head (whose MAC is valid)
    assert _top(cfg) > top
    code, rep = _verify(cfg)
    assert code == 1 and rep["anchor"]["seq"] == top, rep["anchor"]  # the anchor was not carried along
    assert [f["first"] for f in rep["findings"] if f["kind"] == "rewritten"] == [top], rep["findings"]


def test_tasks_and_sessions_without_their_records_are_named(tmp_path: Path) -> None:
    """Rows written beside the chain are held against it: a task inserted without a record, a task whose
    command was changed, a task deleted, a task whose task.create record was deleted, and a terminal session
    inserted without a record are each named, and verify exits 1."""
    cfg = write_config(tmp_path)
    t1, t2, t3, t4 = _served(cfg, 4)
    assert _verify(cfg)[0] == 0
    with _db(cfg) as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(tasks)") if r[1] != "id"]
        db.execute(f"INSERT INTO tasks (id, {', '.join(cols)}) SELECT 99, {', '.join(cols)} FROM tasks WHERE id = ?",
                   (t1,))
        db.execute("UPDATE tasks SET command = 'cat /etc/shadow' WHERE id = ?", (t2,))
        db.execute("DELETE FROM results WHERE task_id = ?", (t3,))
        db.execute("DELETE FROM tasks WHERE id = ?", (t3,))
        rec = db.execute("SELECT id FROM audit_log WHERE action = 'task.create' AND json_extract(detail, '$.task') = ?",
                         (t4,)).fetchone()[0]
        db.execute("DELETE FROM audit_log WHERE id = ?", (rec,))
        started = db.execute("SELECT created_at FROM tasks WHERE id = ?", (t1,)).fetchone()[0]
        db.execute("INSERT INTO terminal_sessions (id, username, host_name, address, login_user, client_address, "
                   "runner, status, reason, cols, rows, started_at, output_bytes, input_bytes, recording_bytes, "
                   "recording_truncated) VALUES (7, 'admin', 'local', '', '', '', '', 'closed', '', 80, 24, ?, 0, 0, "
                   "0, 0)", (started,))
    code, rep = _verify(cfg)
    assert code == 1
    named = {(f["kind"], f.get("subject", "")) for f in rep["findings"]}
    assert {("unrecorded", "task 99"), ("mismatch", f"task {t2}"), ("vanished", f"task {t3}"),
            ("unrecorded", f"task {t4}"), ("unrecorded", "session 7"), ("deleted", "")} <= named, named
    assert not any(s == f"task {t1}" for _, s in named)
    mismatch = next(f for f in rep["findings"] if f["kind"] == "mismatch")
    assert "cat /etc/shadow" in mismatch["message"]


def test_a_terminal_that_fails_to_open_is_recorded(tmp_path: Path) -> None:
    """A terminal session to a host that cannot be reached is a row (status failed) and a terminal.open
    record with result failed, so the cross-check finds every session recorded."""
    import websockets.sync.client as ws_client

    cfg = write_config(tmp_path)
    srv = start_server(cfg)
    try:
        token = srv.login()
        with srv.client(token) as c:
            r = c.post("/api/v1/hosts", json=[{"name": "dead", "address": "127.0.0.1", "port": free_port()}])
            assert r.status_code == 200, r.text
        url = srv.url.replace("http", "ws") + "/api/v1/terminal/connect?host=dead"
        with ws_client.connect(url, subprotocols=[f"bearer.{token}"], open_timeout=30) as ws:  # type: ignore[list-item]
            msg = json.loads(ws.recv(timeout=60))
        assert msg["type"] == "error", msg
        with srv.client(token) as c:
            items = c.get("/api/v1/audit", params={"action": "terminal.open"}).json()["items"]
    finally:
        srv.stop()
    assert [(e["result"], e["target"]) for e in items] == [("failed", "dead")], items
    assert isinstance(items[0]["detail"]["session"], int)
    code, rep = _verify(cfg)
    assert code == 0 and rep["crosscheck"]["sessions"] == 1, rep


class _Hook(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"bodies": bodies})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/anchor", bodies
    httpd.shutdown()
    httpd.server_close()


def test_the_anchor_is_sent_to_syslog_and_a_webhook(tmp_path: Path, hook: tuple[str, list[dict[str, Any]]]) -> None:
    """With audit.anchor_syslog and audit.anchor_webhook the server sends the anchor, each time it has moved,
    to a syslog receiver (UDP) and a webhook: the same record id, hash and signature as the anchor file."""
    url, bodies = hook
    syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    syslog.bind(("127.0.0.1", 0))
    syslog.settimeout(1)
    port = syslog.getsockname()[1]
    cfg = write_config(tmp_path, extra=(f"audit:\n  anchor_interval: 1s\n  anchor_syslog: 127.0.0.1:{port}\n"
                                        f"  anchor_webhook: {url}\n"))
    srv = start_server(cfg)
    lines: list[str] = []
    try:
        srv.login()
        httpx.post(f"{srv.url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {srv.login()}"})
        time.sleep(1)  # the anchor file holds the last record now
        anchor = json.loads((tmp_path / "data" / "audit.anchor").read_text())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                any(f"seq={anchor['seq']} " in x for x in lines) and any(b["anchor"] == anchor for b in bodies)):
            with contextlib.suppress(TimeoutError):
                lines.append(syslog.recv(65536).decode())
    finally:
        srv.stop()
        syslog.close()
    mine = [x for x in lines if f"seq={anchor['seq']} " in x]
    assert mine and f"hash={anchor['hash']}" in mine[0] and f"sig={anchor['sig']}" in mine[0], lines
    assert mine[0].startswith("<") and "small-yi: audit anchor" in mine[0]
    sent = [b for b in bodies if b["anchor"] == anchor]
    assert sent and sent[0]["kind"] == "small-yi.audit.anchor", bodies
    assert sent[0]["file"] == str(tmp_path / "data" / "audit.anchor")
