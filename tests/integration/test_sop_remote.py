"""`small-yi sop run ... --server URL`: a real server, the OpenSSH fleet, the CLI as a separate process.

The run starts on the server (a file's YAML inline, or a stored SOP by name), and the CLI follows it
live: step starts and ends on stderr, every host's output line as ``[step][host] line``, the summary,
and an exit status by result; SMALLYI_SERVER / SMALLYI_TOKEN work as for `small-yi run`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smallyi.testing import Fleet
from support import SMALL_YI, Server, cli, start_server, write_config

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

GREET = """\
steps:
  - id: greet
    type: exec
    cmd: "echo hello from $(whoami); echo to-stderr >&2"
    timeout: 10
  - id: count
    type: exec
    target: {hosts: [host-002]}
    cmd: "seq 3"
"""


@pytest.fixture
def remote(tmp_path: Path, ssh_fleet: Fleet) -> Iterator[tuple[Server, dict[str, str]]]:
    cfg = write_config(tmp_path, extra=ssh_fleet.ssh_yaml())
    lines = ["group: fleet", "hosts:"]
    for name, addr in ssh_fleet.hosts[:3]:
        lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {ssh_fleet.port}"]
    (tmp_path / "inventory.yaml").write_text("\n".join(lines) + "\n")
    r = cli("hosts", "import", str(tmp_path / "inventory.yaml"), config=cfg)
    assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    try:
        # no --config: the CLI talks only to the server
        yield srv, {"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": srv.login(), "SMALLYI_CONFIG": "/nonexistent.yaml"}
    finally:
        srv.stop()


def sop_file(tmp_path: Path, text: str, name: str = "greet.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_file_runs_on_the_server_and_is_followed_live(remote: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    """Host lines per step, step progress on stderr, the summary; exit 0; the run is the server's (trigger api)."""
    srv, env = remote
    r = cli("sop", "run", sop_file(tmp_path, GREET), "--group", "fleet", env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    for host in ("host-001", "host-002", "host-003"):
        assert f"[greet][{host}] hello from fleet" in out
        assert f"[greet][{host}]! to-stderr" in out
    assert [line for line in out if line.startswith("[count]")] == \
        ["[count][host-002] 1", "[count][host-002] 2", "[count][host-002] 3"]
    assert "▶ greet" in r.stderr and "✓ greet success" in r.stderr and "✓ count success" in r.stderr
    run_id = int(r.stderr.split("SOP run ", 1)[1].split()[0])
    assert f"SOP run {run_id} success" in r.stdout and "STEP" in r.stdout
    run = srv.client().get(f"/api/v1/sop-runs/{run_id}").json()
    assert run["status"] == "success" and run["trigger"] == "api" and run["started_by"] == "admin"


def test_failure_exit_status_json_and_flags(remote: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    """--server/--token as flags; a failed step is exit 1; --output json is the run and its steps, nothing else."""
    _, env = remote
    failing = GREET.replace('cmd: "seq 3"', 'cmd: "seq 2; exit 3"')
    r = cli("sop", "run", sop_file(tmp_path, failing), "--group", "fleet", "--output", "json",
            "--server", env["SMALLYI_SERVER"], "--token", env["SMALLYI_TOKEN"],
            env={"SMALLYI_CONFIG": "/nonexistent.yaml"}, timeout=120)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["run"]["status"] == "failed"
    steps = {s["id"]: s for s in doc["steps"]}
    assert steps["greet"]["status"] == "success" and steps["count"]["status"] == "failed"
    assert steps["count"]["result"]["hosts"]["host-002"]["exit_code"] == 3


def test_a_stored_sop_by_name_and_a_dry_run(remote: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    """`sop run NAME` runs the server's stored SOP (its version recorded); --dry-run shows where, runs nothing."""
    srv, env = remote
    http = srv.client(env["SMALLYI_TOKEN"])
    assert http.post("/api/v1/sops", json={"name": "greet", "source": GREET}).status_code == 201
    dry = cli("sop", "run", "greet", "--group", "fleet", "--dry-run", env=env, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "host-001, host-002, host-003" in dry.stdout
    assert http.get("/api/v1/sop-runs").json()["total"] == 0
    r = cli("sop", "run", "greet", "--group", "fleet", env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    [run] = http.get("/api/v1/sop-runs").json()["items"]
    assert run["sop"] == "greet" and run["sop_version"] == 1 and run["status"] == "success"
    missing = cli("sop", "run", "nope", env=env, timeout=60)
    assert missing.returncode == 2 and "no stored SOP named 'nope'" in missing.stderr


def test_bad_input_is_exit_2_with_the_servers_words(remote: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    """An invalid SOP is refused by the server with its line and step; a bad token is an auth error; both exit 2."""
    _, env = remote
    bad = cli("sop", "run", sop_file(tmp_path, GREET.replace("timeout: 10", "timeout: 10x")), "--group", "fleet",
              env=env, timeout=60)
    assert bad.returncode == 2 and "request:5: step greet: timeout: '10x' is not a duration" in bad.stderr
    denied = cli("sop", "run", sop_file(tmp_path, GREET), env={**env, "SMALLYI_TOKEN": "nope"}, timeout=60)
    assert denied.returncode == 2 and "server:" in denied.stderr


def test_ctrl_c_cancels_the_run_on_the_server(remote: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    """SIGINT while following asks the server to cancel: the remote command stops, the run ends cancelled, exit 130."""
    srv, env = remote
    path = sop_file(tmp_path, "steps:\n  - {id: long, type: exec, cmd: 'echo started; sleep 60'}\n")
    proc = subprocess.Popen([SMALL_YI, "sop", "run", path, "--hosts", "host-001"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    http = srv.client(env["SMALLYI_TOKEN"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = http.get("/api/v1/sop-runs").json()["items"]
        if runs and runs[0]["status"] == "running" and http.get(f"/api/v1/sop-runs/{runs[0]['id']}").json()[
                "steps"][0]["task_ids"]:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 30
    run = http.get(f"/api/v1/sop-runs/{runs[0]['id']}").json()
    assert run["status"] == "cancelled", run
    assert "[long][host-001] started" in out


def test_the_client_is_the_one_run_uses() -> None:
    """No second HTTP client: the SOP follower builds on cli.client.Client (its follow() serves tasks too)."""
    import inspect

    from smallyi.cli import client, sop_remote

    assert "Client(server, token)" in inspect.getsource(sop_remote)
    assert "httpx" not in inspect.getsource(sop_remote)
    assert "self.follow(" in inspect.getsource(client.Client.stream)
    assert httpx  # the tests' own client
