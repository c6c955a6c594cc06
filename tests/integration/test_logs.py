"""`small-yi logs`: follow a file across hosts, merged, grep-filtered, in the CLI and over the API."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import websockets.sync.client as ws_client

from smallyi.testing import Fleet
from support import SMALL_YI, cli, start_server, write_config

pytestmark = pytest.mark.fleet


@pytest.fixture
def log_setup(tmp_path: Path, ssh_fleet: Fleet) -> tuple[Path, Path]:
    """A config with three fleet hosts in group `web` and a world-readable log file they all see."""
    cfg = write_config(tmp_path, extra=ssh_fleet.ssh_yaml())
    for name, addr in ssh_fleet.hosts[10:13]:
        r = cli("hosts", "add", name, "--address", addr, "--port", str(ssh_fleet.port), "--group", "web", config=cfg)
        assert r.returncode == 0, r.stderr
    # the fleet's login user must read it: pytest's tmp_path is private to root
    logdir = Path(tempfile.mkdtemp(prefix="smallyi-logs-", dir="/tmp"))
    logdir.chmod(0o755)
    logfile = logdir / "app.log"
    logfile.write_text("old-1\nold-2\n")
    logfile.chmod(0o644)
    return cfg, logfile


def _wait_for(pred, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_cli_follows_and_greps(log_setup: tuple[Path, Path]) -> None:
    """New matching lines appear as `[host] line` from every host; others are filtered out; Ctrl-C ends it."""
    cfg, logfile = log_setup
    out = logfile.parent / "out.txt"
    with out.open("w") as fh:
        proc = subprocess.Popen([SMALL_YI, "logs", "--group", "web", "--file", str(logfile), "--grep", "ERROR|old",
                                 "--lines", "2", "--config", str(cfg)], stdout=fh, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for(lambda: out.read_text().count("old-2") == 3)
            with logfile.open("a") as f:
                f.write("INFO fine\nERROR broken\n")
            _wait_for(lambda: out.read_text().count("ERROR broken") == 3)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
    text = out.read_text()
    assert "INFO fine" not in text
    assert {ln.split("]")[0] for ln in text.splitlines() if "ERROR broken" in ln} == {"[host-011", "[host-012", "[host-013"}
    assert proc.returncode == 0


def test_bad_regex_and_empty_file(log_setup: tuple[Path, Path]) -> None:
    """An invalid --grep and an empty --file are refused before anything connects."""
    cfg, logfile = log_setup
    r = cli("logs", "--group", "web", "--file", str(logfile), "--grep", "(", config=cfg)
    assert r.returncode == 2 and "grep" in r.stderr
    r = cli("logs", "--group", "web", "--file", "", config=cfg, timeout=30)
    assert r.returncode == 2 and "file" in r.stderr


def test_api_log_stream(log_setup: tuple[Path, Path]) -> None:
    """The console's stream: the same merged lines over a WebSocket."""
    cfg, logfile = log_setup
    srv = start_server(cfg)
    try:
        token = srv.login()
        url = srv.url.replace("http", "ws") + f"/api/v1/logs/stream?group=web&file={logfile}&lines=0"
        seen: list[dict] = []
        with ws_client.connect(url, subprotocols=[f"bearer.{token}"], open_timeout=10) as ws:  # type: ignore[list-item]
            time.sleep(1.5)
            with logfile.open("a") as f:
                f.write("live-line\n")
            deadline = time.monotonic() + 20
            while sum(1 for e in seen if e.get("text") == "live-line") < 3:
                assert time.monotonic() < deadline
                msg = json.loads(ws.recv(timeout=20))
                seen.extend(msg["events"])
        assert {e["host"] for e in seen if e.get("text") == "live-line"} == {"host-011", "host-012", "host-013"}
    finally:
        srv.stop()


def test_cli_follows_through_the_server(log_setup: tuple[Path, Path]) -> None:
    """`small-yi logs --server URL --token T` follows through the server's stream (JSON lines here); a
    bad token is refused before anything is followed; a token revoked while following ends it with the
    reason and a non-zero exit."""
    cfg, logfile = log_setup
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            made = c.post("/api/v1/auth/tokens", json={"name": "logs-cli"}).json()
        bad = cli("logs", "--server", srv.url, "--token", "syt_" + "x" * 30, "--group", "web",
                  "--file", str(logfile), timeout=30)
        assert bad.returncode != 0 and "refused the log stream" in bad.stderr, bad.stderr
        out = logfile.parent / "remote.jsonl"
        with out.open("w") as fh:
            proc = subprocess.Popen([SMALL_YI, "logs", "--server", srv.url, "--token", made["token"], "--group", "web",
                                     "--file", str(logfile), "--grep", "ERROR", "--lines", "0", "--output", "json"],
                                    stdout=fh, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(2)  # the server has opened the files on every host
                with logfile.open("a") as f:
                    f.write("INFO skipped\nERROR remote-line\n")

                def lines() -> list[dict]:
                    return [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()]

                _wait_for(lambda: sum(1 for e in lines() if e.get("text") == "ERROR remote-line") == 3)
                assert {e["host"] for e in lines() if e.get("text") == "ERROR remote-line"} == \
                    {"host-011", "host-012", "host-013"}
                assert not any("INFO skipped" in str(e.get("text")) for e in lines())
                with srv.client() as c:
                    assert c.delete(f"/api/v1/auth/tokens/{made['id']}").status_code == 204
                _, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert proc.returncode != 0 and "closed the log stream" in err and "revoked" in err, err
    finally:
        srv.stop()
