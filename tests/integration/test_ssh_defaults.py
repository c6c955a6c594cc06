"""With no key configured, small-yi logs in the way ``ssh`` does: the ssh-agent's keys, IdentityFile of
~/.ssh/config, ~/.ssh/id_*; a configured key is still the only one offered. On the real OpenSSH fleet."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from smallyi.config import ExecutionSettings, OutputSettings
from smallyi.execution.engine import Engine, Job
from smallyi.testing import Fleet, Recorder

pytestmark = pytest.mark.fleet


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home folder (no ~/.ssh) and no agent, so each test says what ssh would find."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return folder


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent on a socket of this test's, named by $SSH_AUTH_SOCK."""
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent not installed (openssh-client)")
    sock = tmp_path / "agent.sock"
    out = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True, text=True, check=True).stdout
    pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    yield sock
    os.kill(pid, signal.SIGTERM)


async def _run(fleet: Fleet, **ssh: object) -> Recorder:
    settings = fleet.ssh_settings(**{"private_key": None, **ssh})
    engine = Engine(settings, ExecutionSettings(), OutputSettings())
    try:
        rec = Recorder()
        hosts = fleet.specs(2)
        await engine.run(Job(hosts=hosts, command="echo hi", timeout=10, concurrency=2), rec)
        rec.check(hosts)
        return rec
    finally:
        await engine.close()


def _copy_key(fleet: Fleet, to: Path) -> Path:
    shutil.copy(fleet.directory / "id_ed25519", to)
    to.chmod(0o600)
    return to


async def test_default_identity_file_logs_in(fleet: Fleet, home: Path) -> None:
    """~/.ssh/id_ed25519 is found with no ssh.private_key, as ssh finds it."""
    _copy_key(fleet, home / ".ssh" / "id_ed25519")
    rec = await _run(fleet)
    assert [rec.status(h.name) for h in fleet.specs(2)] == ["success", "success"]


async def test_agent_keys_log_in_and_agent_false_turns_them_off(fleet: Fleet, home: Path, agent: Path,
                                                               tmp_path: Path) -> None:
    """A key held only by the ssh-agent logs in; with ssh.agent: false it is not offered, and the reason says
    what was tried."""
    key = _copy_key(fleet, tmp_path / "agent_only_key")
    subprocess.run(["ssh-add", "-q", str(key)], check=True, capture_output=True)
    key.unlink()
    rec = await _run(fleet)
    assert rec.status(fleet.specs(1)[0].name) == "success"
    rec = await _run(fleet, agent=False)
    host = fleet.specs(1)[0].name
    assert rec.status(host) == "unreachable"
    reason = rec.done[host].reason
    assert "no key was accepted" in reason and "no ssh.private_key is set" in reason, reason


async def test_openssh_config_identityfile_logs_in(fleet: Fleet, home: Path, tmp_path: Path) -> None:
    """IdentityFile from ~/.ssh/config's matching Host block is used; null config_file reads none."""
    key = _copy_key(fleet, tmp_path / "from_config_key")
    (home / ".ssh" / "config").write_text(f"Host 127.0.*\n    IdentityFile {key}\n")
    rec = await _run(fleet, config_file=str(home / ".ssh" / "config"))
    assert [rec.status(h.name) for h in fleet.specs(2)] == ["success", "success"]
    rec = await _run(fleet, config_file=None)
    assert {rec.status(h.name) for h in fleet.specs(2)} == {"unreachable"}


async def test_a_configured_key_is_the_only_key_offered(fleet: Fleet, home: Path, agent: Path, tmp_path: Path) -> None:
    """ssh.private_key set: the agent's and ~/.ssh's keys are not offered (today's behaviour, kept)."""
    _copy_key(fleet, home / ".ssh" / "id_ed25519")
    good = _copy_key(fleet, tmp_path / "agent_key")
    subprocess.run(["ssh-add", "-q", str(good)], check=True, capture_output=True)
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    rec = await _run(fleet, private_key=str(stranger))
    host = fleet.specs(1)[0].name
    assert rec.status(host) == "unreachable"
    assert f"the server refused key {stranger}" in rec.done[host].reason
