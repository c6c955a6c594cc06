"""The OpenSSH fleet: one real sshd on this machine standing in for N hosts on 127.0.x.y.

Started by the test suite (one per test session, on a free port, in a fresh folder), by the
benchmark, or by a person (``python -m smallyi.testing fleet up 3``)::

    fleet = Fleet.start(20, "/tmp/my-fleet")            # port 0: a free one
    engine = Engine(fleet.ssh_settings(), ExecutionSettings(), OutputSettings())
    await engine.run(Job(hosts=fleet.specs(), command="uptime", ...), emit)
    fleet.grow(1000)                                   # same sshd: only the files change
    fleet.stop()                                       # by its own pid

Each start makes a new client key, host key and known_hosts. As root, the hosts log in as ``fleet``
(created when missing); otherwise sshd runs as the current user, which is then the only user it can
log in (``UsePAM no``, no privilege separation needed), so a developer's laptop needs no root.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from smallyi.config import SSHSettings
from smallyi.errors import SmallYiError
from smallyi.inventory.hosts import HostSpec
from smallyi.testing import fleet_files

#: the login user when started as root (created when missing)
ROOT_LOGIN_USER = "fleet"
#: what ``python -m smallyi.testing fleet`` uses unless told otherwise (the docs' demo fleet)
DEMO_DIR = Path("/tmp/small-yi-fleet")  # noqa: S108 (start() refuses a folder another user owns)
DEMO_PORT = 2222
_PORT_TRIES = 20


class FleetError(SmallYiError):
    """The fleet cannot start, grow or be found; the message says what to do."""

    code = "fleet_error"


def sshd_path() -> Path:
    """The sshd binary (``$SMALLYI_SSHD``, else Debian's /usr/sbin/sshd)."""
    return Path(os.environ.get("SMALLYI_SSHD", "/usr/sbin/sshd"))


def problem() -> str | None:
    """Why no fleet can start on this machine, or None."""
    sshd = sshd_path()
    if not (sshd.is_file() and os.access(sshd, os.X_OK)):
        return (f"{sshd} not found: the OpenSSH fleet needs openssh-server "
                "(apt-get install -y openssh-server; scripts/test installs it when run as root)")
    return None


def pty_problem() -> str | None:
    """Why a fleet started by this user cannot open terminals (PTYs), or None.

    sshd hands a new terminal to the login user and group ``tty``; without root it can do that only
    when the kernel already made the terminal so (``/dev/pts`` mounted with ``gid=5``, as systemd and
    Docker mount it) or the user is in group ``tty``. Commands without a terminal are not affected.
    """
    if os.geteuid() == 0:
        return None
    try:
        tty = grp.getgrnam("tty").gr_gid
    except KeyError:
        return None  # sshd then uses the user's own group
    if tty in os.getgroups() or tty == os.getegid():
        return None
    master, slave = os.openpty()
    try:
        made = os.fstat(slave).st_gid
    finally:
        os.close(master)
        os.close(slave)
    if made == tty:
        return None
    return ("without root, sshd cannot give a terminal to group tty here (/dev/pts is mounted without "
            "gid=5): terminals on the fleet work as root, or with devpts mounted gid=5,mode=620")


@dataclass
class Fleet:
    """A running (or described) fleet: its folder, hosts as (name, address), port and login user.

    ``port`` is what clients dial and every file names; ``sshd_port`` is where sshd listens, the same
    unless something (the benchmark's delay line) stands in front of it.
    """

    directory: Path
    hosts: list[tuple[str, str]]
    port: int
    user: str
    sshd_port: int
    _host_key: str = field(default="", init=False, repr=False, compare=False)

    # -- starting, finding, growing, stopping ------------------------------------------------------

    @classmethod
    def start(cls, n: int, directory: Path | str, *, port: int = 0, sshd_port: int | None = None) -> Fleet:
        """Start sshd and describe ``n`` hosts in ``directory`` (a fleet already there is stopped first).

        ``port`` 0 picks a free port. With ``sshd_port`` (0: a free one) sshd listens on 127.0.0.1 there
        and the files name ``port``, where the caller puts its front.
        """
        folder = Path(directory).absolute()
        if folder.exists() and folder.stat().st_uid != os.geteuid():
            # the keys go here: a folder someone else owns (a planted /tmp/small-yi-fleet) could swap them
            raise FleetError(f"{folder} belongs to another user: pick a folder of your own for the fleet")
        why = problem()
        if why:
            raise FleetError(why)
        if sshd_port is not None and not port:
            raise FleetError("a fleet behind a front needs the front's port: pass port= with sshd_port=")
        hosts = _hosts(n)
        folder.mkdir(parents=True, exist_ok=True)
        _stop_sshd(folder)  # a fleet already here, described or not
        user = _login_user()
        if os.geteuid() == 0:
            folder.chmod(0o755)  # sshd reads authorized_keys as the login user
            _check_reachable(folder, user)
        host_key = _write_keys(folder)
        listen = "0.0.0.0" if sshd_port is None else "127.0.0.1"
        wanted = sshd_port if sshd_port is not None else port
        bound = _start_sshd(folder, listen=listen, port=wanted, user=user)
        fleet = cls(folder, [], port if sshd_port is not None else bound, user, bound)
        fleet._host_key = host_key
        fleet.describe(len(hosts))
        return fleet

    @classmethod
    def load(cls, directory: Path | str) -> Fleet:
        """The fleet described in ``directory`` (running or not: see :meth:`running`)."""
        folder = Path(directory).absolute()
        try:
            meta = json.loads((folder / "fleet.json").read_text())
            sshd = json.loads((folder / "sshd.json").read_text())
            names = [(a, b) for a, b, *_ in (line.split() for line in (folder / "hosts.txt").read_text().splitlines())]
        except (OSError, ValueError) as exc:
            raise FleetError(f"no fleet in {folder}: start one with "
                             f"`python -m smallyi.testing fleet up N {folder}` ({exc})") from exc
        return cls(folder, names, int(meta["port"]), str(meta["user"]), int(sshd["port"]))

    def describe(self, n: int) -> None:
        """Write the description files for the first ``n`` hosts (more or fewer: sshd stays as it is)."""
        self.hosts = _hosts(n)
        _write_description(self.directory, fleet_files.Description(
            tuple(self.hosts), self.port, self.user, self.key, self.known_hosts, self._public_host_key()))

    def grow(self, n: int) -> None:
        """At least ``n`` hosts (never fewer than now), without restarting sshd."""
        if n > len(self.hosts):
            self.describe(n)

    def subset(self, n: int, folder: Path | None = None) -> Path:
        """A folder describing only the first ``n`` hosts (same sshd, key and known_hosts), for tools
        that take a whole inventory; ``folder`` defaults to ``DIRECTORY/nN``."""
        if n > len(self.hosts):
            raise FleetError(f"the fleet in {self.directory} has {len(self.hosts)} hosts, not {n}: grow it first")
        sub = folder or self.directory / f"n{n}"
        sub.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            sub.chmod(0o755)
        _write_description(sub, fleet_files.Description(
            tuple(self.hosts[:n]), self.port, self.user, self.key, self.known_hosts, self._public_host_key()))
        return sub

    @property
    def pid(self) -> int | None:
        """sshd's pid, if that process is running with this fleet's config."""
        return _sshd_pid(self.directory)

    def running(self) -> bool:
        return self.pid is not None

    def stop(self) -> None:
        """Stop this fleet's sshd (its own pid only; connections already open end with their clients)."""
        _stop_sshd(self.directory)

    # -- what a client needs -------------------------------------------------------------------------

    @property
    def key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    def specs(self, n: int | None = None) -> list[HostSpec]:
        """The first ``n`` hosts (all by default) as the engine's host values."""
        return [HostSpec(name=name, address=addr, port=self.port, user=self.user)
                for name, addr in self.hosts[: n or None]]

    def ssh_settings(self, **overrides: Any) -> SSHSettings:
        """The config's ``ssh`` settings for this fleet: its user, key and known_hosts."""
        values: dict[str, Any] = {"user": self.user, "private_key": str(self.key),
                                  "known_hosts": str(self.known_hosts)}
        values.update(overrides)
        return SSHSettings(**values)

    def ssh_yaml(self, connect_timeout: str = "10s") -> str:
        """The same, as a config file's ``ssh:`` section."""
        return (f"ssh:\n  user: {self.user}\n  private_key: {self.key}\n"
                f"  known_hosts: {self.known_hosts}\n  connect_timeout: {connect_timeout}\n")

    def summary(self) -> str:
        first, last = (self.hosts[0], self.hosts[-1]) if self.hosts else (("-", "-"), ("-", "-"))
        state = f"sshd pid {self.pid}" if self.running() else "sshd not running"
        return (f"{len(self.hosts)} hosts ({first[0]}..{last[0]} at {first[1]}..{last[1]}) on port {self.port}, "
                f"login user {self.user}, {state}; files in {self.directory}")

    def _public_host_key(self) -> str:
        if not self._host_key:
            self._host_key = " ".join((self.directory / "host_ed25519.pub").read_text().split()[:2])
        return self._host_key


# -- the edges: users, keys, files, sshd ---------------------------------------------------------------


def _sshd_pid(folder: Path) -> int | None:
    """The pid in ``folder``'s sshd.pid, if that process is an sshd running ``folder``'s config."""
    try:
        pid = int((folder / "sshd.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if str(folder / "sshd_config").encode() in cmdline else None


def _stop_sshd(folder: Path) -> None:
    pid = _sshd_pid(folder)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise FleetError(f"not allowed to stop sshd (pid {pid}) of the fleet in {folder}: "
                             "another user started it") from None
        deadline = time.monotonic() + 5
        while _sshd_pid(folder) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        if _sshd_pid(folder) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (folder / "sshd.pid").unlink()


def _hosts(n: int) -> list[tuple[str, str]]:
    try:
        return fleet_files.hosts(n)
    except ValueError as exc:
        raise FleetError(str(exc)) from exc


def _login_user() -> str:
    """As root: ``fleet``, created (and unlocked for key logins) when needed. Otherwise: who we are."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.getuid()).pw_name
    user = ROOT_LOGIN_USER
    try:
        pwd.getpwnam(user)
    except KeyError:
        made = subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user],
                              capture_output=True, text=True, check=False)
        try:
            pwd.getpwnam(user)  # made here, or by a test session started at the same time
        except KeyError:
            raise FleetError(f"could not create the fleet's login user {user!r}: "
                             f"{made.stderr.strip() or made.returncode}") from None
    if _locked(user):
        # sshd without PAM refuses a locked account ("!" password) even with a key; "*" is no password
        subprocess.run(["usermod", "-p", "*", user], capture_output=True, check=True)
    return user


def _locked(user: str) -> bool:
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name == user:
                return rest.startswith("!")
    except OSError:
        pass
    return False


def _check_reachable(folder: Path, user: str) -> None:
    """As root, the login user must reach ``folder`` (sshd reads authorized_keys as that user)."""
    for parent in [folder, *folder.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise FleetError(f"the fleet's login user {user!r} cannot reach {folder}: {parent} is not "
                             f"searchable by others (chmod o+x {parent}, or pick a folder everyone can reach)")


def _write_keys(folder: Path) -> str:
    """A new client key and host key; returns the host key's public line."""
    for name in ("id_ed25519", "host_ed25519"):
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"small-yi-fleet {name}")
        path = folder / name
        path.unlink(missing_ok=True)
        key.write_private_key(str(path))
        path.chmod(0o600)
        (folder / f"{name}.pub").write_bytes(key.export_public_key())
    (folder / "authorized_keys").write_bytes((folder / "id_ed25519.pub").read_bytes())
    (folder / "authorized_keys").chmod(0o644)
    return " ".join((folder / "host_ed25519.pub").read_text().split()[:2])


def _write_description(folder: Path, d: fleet_files.Description) -> None:
    """Each file replaced whole (a reader never sees half of one)."""
    for name, text in fleet_files.describe(d).items():
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o644)
        tmp.replace(folder / name)


def _sshd_version() -> tuple[int, int]:
    out = subprocess.run([str(sshd_path()), "-V"], capture_output=True, text=True, check=False)
    return fleet_files.sshd_version(out.stdout + out.stderr)


def _free_port(listen: str) -> int:
    with socket.socket() as s:
        s.bind((listen, 0))
        return int(s.getsockname()[1])


def _start_sshd(folder: Path, *, listen: str, port: int, user: str) -> int:
    """Start sshd; returns the port it listens on once it does (its pid file is written after it binds).

    sshd daemonizes before it binds, so a taken port shows only in its log. Port 0: a free port, tried
    again with another if someone takes it first.
    """
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    version = _sshd_version()
    config, log, pid_file = folder / "sshd_config", folder / "sshd.log", folder / "sshd.pid"
    for _ in range(_PORT_TRIES if port == 0 else 1):
        chosen = port or _free_port(listen)
        config.write_text(fleet_files.sshd_config(folder, port=chosen, listen=listen, user=user, version=version))
        log.write_text("")
        pid_file.unlink(missing_ok=True)
        r = subprocess.run([str(sshd_path()), "-f", str(config), "-E", str(log)], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30, check=False)
        said = _wait_for(pid_file, log) if r.returncode == 0 else (r.stdout + r.stderr + log.read_text()).strip()
        if said is None:
            (folder / "sshd.json").write_text(json.dumps({"port": chosen, "listen": listen}) + "\n")
            return chosen
        if port == 0 and _BIND_FAILED in said:
            continue
        hint = " - pick another port" if _BIND_FAILED in said else ""
        said = " ".join(said.split()) or "no message"
        raise FleetError(f"sshd did not start on {listen}:{chosen}: {said}{hint}")
    raise FleetError(f"sshd found no free port in {_PORT_TRIES} tries")


_BIND_FAILED = "Cannot bind any address"


def _wait_for(pid_file: Path, log: Path) -> str | None:
    """None once sshd wrote its pid file; what its log says if it failed to bind or never got there."""
    deadline = time.monotonic() + 10
    while True:
        if pid_file.exists() and pid_file.read_text().strip():
            return None
        said = log.read_text(errors="replace").strip()
        if _BIND_FAILED in said:
            return said
        if time.monotonic() > deadline:
            return f"no pid file {pid_file} after 10 s; its log says: {said or 'nothing'}"
        time.sleep(0.02)


def stop_in(directory: Path | str) -> bool:
    """Stop the fleet in ``directory`` if one runs there; whether one did."""
    try:
        fleet = Fleet.load(directory)
    except FleetError:
        return False
    was = fleet.running()
    fleet.stop()
    return was


__all__ = ["DEMO_DIR", "DEMO_PORT", "ROOT_LOGIN_USER", "Fleet", "FleetError", "problem", "pty_problem", "stop_in"]
