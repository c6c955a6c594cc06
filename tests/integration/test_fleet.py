"""The OpenSSH fleet helper on a real sshd: fleets side by side, growing in place, stopping by pid, the
command line, and a fleet started without root logging in as its own user."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from smallyi.config import ExecutionSettings, OutputSettings
from smallyi.execution.engine import Engine, Job
from smallyi.testing import Fleet, FleetError, Recorder

pytestmark = pytest.mark.fleet


def ssh(folder: Path, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """OpenSSH's own client, with the fleet's ssh_config."""
    return subprocess.run(["ssh", "-F", str(folder / "ssh_config"), host, command], capture_output=True, text=True,
                          timeout=60, check=False)


def ssh_with_key(fl: Fleet, key: Path) -> subprocess.CompletedProcess[str]:
    """host-001 of ``fl`` with only ``key`` offered (no ssh_config: it would add the fleet's own key)."""
    return subprocess.run(["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(key),
                           "-o", f"UserKnownHostsFile={fl.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                           "-p", str(fl.port), "-l", fl.user, "127.0.1.1", "true"],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def folder(sshd_available: None) -> Iterator[Path]:
    """A folder for a fleet of the test's own (under /tmp: sshd reads it as the login user)."""
    path = Path(tempfile.mkdtemp(prefix="small-yi-fleet-test-"))
    yield path
    with contextlib.suppress(FleetError):
        Fleet.load(path).stop()
    shutil.rmtree(path, ignore_errors=True)


def test_two_fleets_run_side_by_side_with_their_own_ports_and_keys(fleet: Fleet, folder: Path) -> None:
    """A second fleet (another test run, another worktree) gets another free port and keys of its own:
    both answer, and neither's key opens the other."""
    other = Fleet.start(2, folder)
    assert other.port != fleet.port and other.running() and fleet.running()
    assert ssh(other.directory, "host-002", "echo $SSH_CONNECTION").stdout.split()[2:] == ["127.0.1.2", str(other.port)]
    assert ssh(fleet.directory, "host-001", "echo ok").stdout == "ok\n"
    assert ssh_with_key(other, other.key).returncode == 0
    crossed = ssh_with_key(other, fleet.key)
    assert crossed.returncode == 255 and "Permission denied" in crossed.stderr
    assert (other.directory / "host_ed25519.pub").read_text() != (fleet.directory / "host_ed25519.pub").read_text()


def test_a_port_in_use_is_a_clear_error(fleet: Fleet, folder: Path) -> None:
    """A port someone else holds (here the session's fleet) is named, with what to do."""
    with pytest.raises(FleetError, match=rf"{fleet.port}.*Address already in use.*pick another port"):
        Fleet.start(1, folder, port=fleet.port)
    assert fleet.running()


def test_a_restart_makes_new_keys(folder: Path) -> None:
    """Keys are made per start: the old client key no longer logs in."""
    first = Fleet.start(1, folder)
    old_key = first.key.read_bytes()
    again = Fleet.start(1, folder)
    assert again.key.read_bytes() != old_key
    (folder / "old_key").write_bytes(old_key)
    (folder / "old_key").chmod(0o600)
    assert ssh_with_key(again, again.key).returncode == 0
    r = ssh_with_key(again, folder / "old_key")
    assert r.returncode == 255 and "Permission denied" in r.stderr


async def test_growing_keeps_sshd_and_reaches_the_new_hosts(folder: Path) -> None:
    """Growing to 300 hosts rewrites the files only: the same sshd answers host-300 at 127.0.2.46."""
    fl = Fleet.start(2, folder)
    pid = fl.pid
    fl.grow(300)
    fl.grow(10)  # never shrinks
    assert fl.pid == pid and len(fl.hosts) == 300 and fl.hosts[-1] == ("host-300", "127.0.2.46")
    assert Fleet.load(folder).hosts == fl.hosts
    engine = Engine(fl.ssh_settings(), ExecutionSettings(), OutputSettings())
    try:
        rec = Recorder()
        hosts = [fl.specs()[0], fl.specs()[254], fl.specs()[299]]
        await engine.run(Job(hosts=hosts, command="echo $SSH_CONNECTION", timeout=30, concurrency=3), rec)
        rec.check(hosts)
        assert [rec.lines(h.name)[0].split()[2] for h in hosts] == ["127.0.1.1", "127.0.2.1", "127.0.2.46"]
    finally:
        await engine.close()


def test_stop_ends_its_own_sshd_only(fleet: Fleet, folder: Path) -> None:
    """Stopping one fleet ends its sshd (the port closes) and leaves the session's fleet running."""
    fl = Fleet.start(1, folder)
    pid = fl.pid
    assert pid is not None
    fl.stop()
    assert fl.pid is None and not (folder / "sshd.pid").exists()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.1.1", fl.port))
    assert fleet.running()
    fl.stop()  # twice is harmless


def test_the_command_line_starts_describes_and_stops_a_fleet(folder: Path) -> None:
    """``python -m smallyi.testing fleet up/status/down``: what the docs tell a person to run."""
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "smallyi.testing", "fleet", *args], capture_output=True,
                              text=True, timeout=120, check=False)

    up = cli("up", "2", str(folder), "--port", "0")
    assert up.returncode == 0 and up.stdout.startswith("fleet up: 2 hosts (host-001..host-002 at 127.0.1.1..127.0.1.2)")
    pid = Fleet.load(folder).pid
    again = cli("up", "3", str(folder), "--port", "0")
    assert again.returncode == 0 and "already up, now 3 hosts" in again.stdout and Fleet.load(folder).pid == pid
    assert ssh(folder, "host-003", "echo three").stdout == "three\n"
    status = cli("status", str(folder))
    assert status.returncode == 0 and status.stdout.startswith("up: 3 hosts") and f"sshd pid {pid}" in status.stdout
    assert cli("down", str(folder)).stdout == "fleet down\n"
    down = cli("status", str(folder))
    assert down.returncode == 1 and down.stdout.startswith("down:")
    missing = cli("status", str(folder / "none"))
    assert missing.returncode == 1 and "no fleet in" in missing.stdout


def _start_as(user: pwd.struct_passwd, folder: Path) -> None:
    """Start a fleet in a child that has dropped root for ``user`` (the sshd it starts runs as that user)."""
    os.chown(folder, user.pw_uid, user.pw_gid)
    errors = folder / "child-error.txt"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.environ["HOME"] = user.pw_dir
            Fleet.start(2, folder)
            code = 0
        except BaseException:
            errors.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, errors.read_text() if errors.exists() else status


def test_a_fleet_started_without_root_logs_in_as_its_own_user(fleet: Fleet, folder: Path) -> None:
    """A developer's laptop: sshd runs as the user who started it and logs that user in (no PAM, no
    privilege separation). As root this drops to the unprivileged ``fleet`` user to prove it."""
    me = pwd.getpwuid(os.geteuid())
    user = pwd.getpwnam(fleet.user) if me.pw_uid == 0 else me
    if me.pw_uid == 0:
        _start_as(user, folder)
    else:
        Fleet.start(2, folder)
    fl = Fleet.load(folder)
    assert fl.user == user.pw_name and fl.pid is not None
    assert os.stat(f"/proc/{fl.pid}").st_uid == user.pw_uid
    r = ssh(folder, "host-002", "id -un; echo $SSH_CONNECTION")
    assert r.returncode == 0, r.stderr
    name, connection = r.stdout.splitlines()
    assert name == user.pw_name and connection.split()[2:] == ["127.0.1.2", str(fl.port)]
