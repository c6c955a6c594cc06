"""A host's own SSH settings (``ssh:`` on the host) over the config's: key file or stored key secret,
known_hosts, host key policy, connect timeout; on the real OpenSSH fleet, through the engine, the web
terminal's connector, the API (with who may set a key) and the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from smallyi.config import ExecutionSettings, OutputSettings
from smallyi.execution.connectors.pty import PtyConnector
from smallyi.execution.engine import Engine, Job
from smallyi.inventory.hosts import HostSpec, SSHOverrides
from smallyi.testing import Behaviour, Fleet, HostileFleet, Recorder
from support import ADMIN_HASH, ADMIN_PASSWORD, Server, cli, start_server, write_config

pytestmark = pytest.mark.fleet


def _stranger_key(folder: Path) -> Path:
    """A key no fleet host accepts: the config's default in these tests, so only a host's own key logs in."""
    path = folder / "stranger_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
    return path


async def _run(engine: Engine, hosts: list[HostSpec], command: str = "echo hi") -> Recorder:
    rec = Recorder()
    await engine.run(Job(hosts=hosts, command=command, timeout=10, concurrency=10), rec)
    return rec


def _host(fleet: Fleet, i: int, name: str, **own: Any) -> HostSpec:
    _, address = fleet.hosts[i]
    return HostSpec(name=name, address=address, port=fleet.port, user=fleet.user, ssh=SSHOverrides(**own))


async def test_a_key_of_its_own_logs_in_and_is_pooled_apart(fleet: Fleet, tmp_path: Path) -> None:
    """The config's key is refused everywhere; the host naming the fleet's key logs in. A second entry for
    the same address, user and port without the key does not ride on that pooled connection."""
    engine = Engine(fleet.ssh_settings(private_key=str(_stranger_key(tmp_path))), ExecutionSettings(),
                    OutputSettings())
    try:
        own = _host(fleet, 0, "own-key", private_key=str(fleet.directory / "id_ed25519"))
        plain = _host(fleet, 0, "config-key")
        rec = await _run(engine, [own])
        assert rec.status("own-key") == "success" and rec.lines("own-key") == ["hi"]
        rec = await _run(engine, [plain, own])
        assert rec.status("own-key") == "success"
        assert rec.status("config-key") == "unreachable"
        assert f"authentication failed for user {fleet.user}" in rec.done["config-key"].reason
        assert "stranger_key" in rec.done["config-key"].reason
    finally:
        await engine.close()


async def test_a_host_key_policy_and_known_hosts_of_its_own(fleet: Fleet, tmp_path: Path) -> None:
    """Strict with an empty known_hosts refuses every host but the ones that say otherwise: one pointing at
    the fleet's known_hosts, one trusting on first use into a file of its own (which gets the key)."""
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    own_file = tmp_path / "own_known_hosts"
    engine = Engine(fleet.ssh_settings(known_hosts=str(empty)), ExecutionSettings(), OutputSettings())
    try:
        hosts = [
            _host(fleet, 1, "listed", known_hosts=str(fleet.directory / "known_hosts")),
            _host(fleet, 2, "first-use", host_key_policy="accept-new", known_hosts=str(own_file)),
            _host(fleet, 3, "unknown"),
        ]
        rec = await _run(engine, hosts)
        assert rec.status("listed") == "success"
        assert rec.status("first-use") == "success"
        assert rec.status("unknown") == "unreachable"
        assert "not in known_hosts" in rec.done["unknown"].reason and str(empty) in rec.done["unknown"].reason
        assert own_file.read_text().startswith(f"[{fleet.hosts[2][1]}]:{fleet.port} ssh-")
        assert empty.read_text() == ""  # accept-new wrote to the host's file, not the config's
    finally:
        await engine.close()


async def test_a_connect_timeout_of_its_own(hostile: HostileFleet) -> None:
    """A silent host with its own 0.5s connect timeout is given up after that, not the config's 30s."""
    silent = await hostile.start(Behaviour.SILENT)
    engine = Engine(hostile.ssh_settings(connect_timeout=30), ExecutionSettings(), OutputSettings())
    try:
        host = HostSpec(name="quick", address="127.0.0.1", port=silent.port,
                        ssh=SSHOverrides(connect_timeout=0.5))
        started = time.monotonic()
        rec = await _run(engine, [host])
        assert time.monotonic() - started < 5
        assert rec.status("quick") == "unreachable"
        assert "timed out after 0.5s" in rec.done["quick"].reason
    finally:
        await engine.close()


async def test_the_web_terminal_uses_the_hosts_own_key(fleet_terminals: Fleet, tmp_path: Path) -> None:
    """The terminal's connector logs in with the host's key, and is refused with the config's."""
    fleet = fleet_terminals
    pty = PtyConnector(fleet.ssh_settings(private_key=str(_stranger_key(tmp_path))))
    shell = await pty.open(_host(fleet, 4, "term", private_key=str(fleet.directory / "id_ed25519")),
                           cols=80, rows=24)
    try:
        shell.write(b"echo own-$((40+2))\n")
        seen = b""
        deadline = time.monotonic() + 10
        while b"own-42" not in seen and time.monotonic() < deadline:
            seen += await shell.read()
        assert b"own-42" in seen
    finally:
        await shell.close()
    with pytest.raises(Exception, match="authentication failed"):
        await pty.open(_host(fleet, 4, "term-config-key"), cols=80, rows=24)


# -- through the server ---------------------------------------------------------------------------------


@pytest.fixture
def key_server(tmp_path: Path, ssh_fleet: Fleet) -> Iterator[tuple[Server, Fleet]]:
    """A server whose config key no fleet host accepts, with a user who may edit hosts but not secrets."""
    users = (f"auth:\n  users:\n    - username: admin\n      password_hash: \"{ADMIN_HASH}\"\n"
             f"    - username: inv\n      password_hash: \"{ADMIN_HASH}\"\n      role: inventory\n"
             "roles:\n  inventory:\n    permissions: [hosts.read, hosts.write, tasks.run, tasks.read]\n")
    extra = (f"ssh:\n  user: {ssh_fleet.user}\n  private_key: {_stranger_key(tmp_path)}\n"
             f"  known_hosts: {ssh_fleet.known_hosts}\n  connect_timeout: 10s\n")
    srv = start_server(write_config(tmp_path, users=users, extra=extra))
    yield srv, ssh_fleet
    srv.stop()


def _finished(c: httpx.Client, task_id: int) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 30
    while c.get(f"/api/v1/tasks/{task_id}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the task did not finish"
        time.sleep(0.2)
    return {r["host"]: r for r in c.get(f"/api/v1/tasks/{task_id}/results").json()["items"]}


def test_a_stored_key_secret_per_host_through_the_api(key_server: tuple[Server, Fleet]) -> None:
    """An admin stores the fleet's key as a secret and names it on one host: that host runs, its twin
    without it is refused. A user with hosts.write but not secrets.write cannot name a key (403, nothing
    saved) but can set a connect timeout. The key never comes back in any answer."""
    srv, fleet = key_server
    pem = fleet.key.read_text()
    address = fleet.hosts[5][1]
    with srv.client() as admin, srv.client(srv.login("inv", ADMIN_PASSWORD)) as inv:
        assert admin.put("/api/v1/security/secrets/fleet-key", json={"value": pem, "kind": "ssh-key"}).status_code == 200
        keyed = {"name": "keyed", "address": address, "port": fleet.port, "ssh": {"private_key_secret": "fleet-key"}}
        r = inv.post("/api/v1/hosts", json=[keyed])
        assert r.status_code == 403 and "secrets.write" in r.json()["error"]["message"]
        assert inv.get("/api/v1/hosts/keyed").status_code == 404
        r = inv.post("/api/v1/hosts", json=[{"name": "patient", "address": address, "port": fleet.port,
                                             "ssh": {"connect_timeout": "3s"}}])
        assert r.status_code == 200, r.text
        assert inv.get("/api/v1/hosts/patient").json()["ssh"] == {"connect_timeout": 3.0}
        r = inv.patch("/api/v1/hosts/patient", json={"ssh": {"host_key_policy": "off"}})
        assert r.status_code == 403 and "secrets.write" in r.json()["error"]["message"]

        assert admin.post("/api/v1/hosts", json=[keyed]).status_code == 200
        shown = admin.get("/api/v1/hosts/keyed").json()
        assert shown["ssh"] == {"private_key_secret": "fleet-key"}
        task = admin.post("/api/v1/tasks", json={"target": {"hosts": ["keyed", "patient"]}, "cmd": "echo hi"})
        assert task.status_code == 201, task.text
        results = _finished(admin, task.json()["id"])
        assert results["keyed"]["status"] == "success"
        assert results["patient"]["status"] == "unreachable"
        assert "authentication failed" in results["patient"]["reason"]
        listing = admin.get("/api/v1/hosts").text + json.dumps(results)
        assert "PRIVATE KEY" not in listing and pem.splitlines()[1] not in listing

        # a secret that does not exist is a reason on the host, not a crash
        assert admin.patch("/api/v1/hosts/keyed", json={"ssh": {"private_key_secret": "no-such-key"}}).status_code == 200
        results = _finished(admin, admin.post("/api/v1/tasks", json={"target": {"hosts": ["keyed"]},
                                                                    "cmd": "echo hi"}).json()["id"])
        assert results["keyed"]["status"] == "unreachable"
        assert "key secret 'no-such-key' does not exist" in results["keyed"]["reason"]


@pytest.mark.parametrize(("ssh", "message"), [
    ({"private_key": "keys/id"}, "ssh.private_key 'keys/id' must be an absolute path"),
    ({"private_key": "/k", "private_key_secret": "k"}, "give one"),
    ({"host_key_policy": "sometimes"}, "ssh.host_key_policy 'sometimes' is not one of strict, accept-new, off"),
    ({"connect_timeout": "soon"}, "ssh.connect_timeout: 'soon' is not a duration"),
    ({"connect_timeout": 0}, "ssh.connect_timeout must be more than 0"),
    ({"port": 22}, "port"),
])
def test_bad_ssh_settings_are_refused_naming_them(server: Server, ssh: dict[str, Any], message: str) -> None:
    """Each bad setting is refused (422) with a message naming it, and no host is saved."""
    with server.client() as c:
        r = c.post("/api/v1/hosts", json=[{"name": "h", "address": "10.0.0.1", "ssh": ssh}])
        assert r.status_code == 422, r.text
        assert message in r.json()["error"]["message"]
        assert c.get("/api/v1/hosts/h").status_code == 404


def test_cli_sets_and_resets_a_hosts_ssh_settings(config_file: Path) -> None:
    """``hosts add`` takes the SSH flags; ``hosts set`` changes one and keeps the others; a key flag replaces
    the other kind of key; ``--ssh-defaults`` drops them all; a bad value names the flag's setting."""

    def show() -> dict[str, Any]:
        out = cli("hosts", "show", "h", "--output", "json", config=config_file)
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout)["ssh"])

    r = cli("hosts", "add", "h", "--address", "10.0.0.1", "--private-key", "/etc/keys/h",
            "--connect-timeout", "3s", "--host-key-policy", "accept-new", config=config_file)
    assert r.returncode == 0, r.stderr
    assert show() == {"private_key": "/etc/keys/h", "host_key_policy": "accept-new", "connect_timeout": 3.0}
    assert cli("hosts", "set", "h", "--connect-timeout", "", config=config_file).returncode == 0
    assert show() == {"private_key": "/etc/keys/h", "host_key_policy": "accept-new"}
    assert cli("hosts", "set", "h", "--private-key-secret", "h-key", config=config_file).returncode == 0
    assert show() == {"private_key_secret": "h-key", "host_key_policy": "accept-new"}
    assert cli("hosts", "set", "h", "--ssh-defaults", config=config_file).returncode == 0
    assert show() == {}
    bad = cli("hosts", "add", "g", "--address", "10.0.0.2", "--host-key-policy", "maybe", config=config_file)
    assert bad.returncode != 0 and "ssh.host_key_policy 'maybe'" in bad.stderr + bad.stdout
    assert cli("hosts", "show", "g", config=config_file).returncode != 0
