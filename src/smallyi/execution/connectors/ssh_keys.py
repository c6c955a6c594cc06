"""The SSH connector's trust material, read once per engine: the client key and known_hosts.

Reading them per host would cost a file parse per connection; reading them at import or engine
construction would fail a server that never uses SSH. So they load on first use, and a problem
(missing key file, unreadable known_hosts) becomes a clear reason on every SSH host instead of a crash.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import asyncssh

from smallyi.config import SSHSettings

log = logging.getLogger(__name__)


def host_port(address: str, port: int) -> str:
    """``127.0.1.5:2222``; IPv6 addresses bracketed."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def known_hosts_name(address: str, port: int) -> str:
    """The host field of a known_hosts line, as OpenSSH writes it."""
    return address if port == 22 else f"[{address}]:{port}"


class ClientKey:
    """The configured private key (only that one: no agent, no ~/.ssh defaults).

    ``data`` (the key itself, decrypted from the secret store) wins over ``path``.
    """

    def __init__(self, path: str | None, data: bytes | None = None) -> None:
        self.path = path
        self.keys: list[Any] | None = None
        #: why no key could be used, as the reason every SSH host fails with
        self.problem: str | None = None
        if data is not None:
            self.path = "(from the secret store)"
            try:
                self.keys = [asyncssh.import_private_key(data)]
            except (asyncssh.KeyImportError, ValueError) as exc:
                self.problem = f"the private key in ssh.private_key_secret cannot be used: {exc}"
            return
        if path is None:
            return
        try:
            self.keys = [asyncssh.read_private_key(path)]
        except FileNotFoundError:
            self.problem = f"private key {path} not found; set ssh.private_key to an existing key file"
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            self.problem = f"private key {path} cannot be used: {why}"


class PinStore(Protocol):
    """Where ``accept-new`` pins keys trusted on first use (the database, in small-yi's runtime).

    asyncssh asks about keys synchronously, so the store keeps its pins in memory (``lines``), is
    refreshed before each new connection (``refresh``), and writes and audits in the background.
    """

    #: bumped when pins are removed: trust built from older pins must be rebuilt
    generation: int

    async def refresh(self) -> None: ...

    def lines(self) -> Iterable[str]: ...

    def pin(self, host: str, key_line: str, fingerprint: str) -> None: ...

    def changed(self, host: str, fingerprint: str) -> None: ...


class HostKeys:
    """known_hosts under a policy: ``strict``, ``accept-new`` (pin unknown keys) or ``off``.

    With a :class:`PinStore`, accept-new pins keys there (and trusts its pins) instead of appending
    to the known_hosts file; under strict and accept-new alike a changed key is reported to it (it
    logs and audits the refusal).
    """

    def __init__(self, policy: str, path: str | None, pins: PinStore | None = None) -> None:
        self.policy = policy
        self.path = path
        self.pins = pins if policy == "accept-new" else None
        self._reports = pins if policy != "off" else None
        self._loaded: set[str] = set()
        self.known = asyncssh.SSHKnownHosts()
        self.missing = False
        self.problem: str | None = None
        self._warned = False
        if policy != "off" and path is not None:  # off: never consulted; no file: nothing is known
            try:
                self.known = asyncssh.read_known_hosts(path)
            except FileNotFoundError:
                self.missing = True
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                self.problem = f"known_hosts file {path} cannot be read: {why}"
        self.sync()

    def sync(self) -> None:
        """Trust the store's pins that are not loaded yet (call after ``pins.refresh()``)."""
        if self.pins is None:
            return
        for line in self.pins.lines():
            if line not in self._loaded:
                self._loaded.add(line)
                self.known.load(line + "\n")

    def connect_arg(self) -> asyncssh.SSHKnownHosts | None:
        """What to pass as asyncssh's ``known_hosts`` (None turns checking off)."""
        if self.policy == "off":
            if not self._warned:
                self._warned = True
                log.warning("SSH host keys are not checked (ssh.host_key_policy: off); anyone on the "
                            "path to a host can pose as it")
            return None
        return self.known

    def _listed(self, host: str, addr: str, port: int) -> list[Any]:
        keys, ca_keys, *_ = self.known.match(host, addr, port if port != 22 else None)
        return [*keys, *ca_keys]

    def accept(self, host: str, addr: str, port: int, key: Any) -> bool:
        """Called for a key known_hosts does not trust: True to accept it (accept-new, host unknown)."""
        if self.policy not in ("strict", "accept-new"):
            return False
        listed = self._listed(host, addr, port)
        if listed and key not in listed and self._reports is not None:
            self._reports.changed(known_hosts_name(host, port), key.get_fingerprint())
        if self.policy != "accept-new":
            return False
        if listed:
            return key in listed  # an entry appended meanwhile by a parallel connection
        line = f"{known_hosts_name(host, port)} {self._public(key)}\n"
        self.known.load(line)  # trusted from now on, for this engine at least
        if self.pins is not None:
            self._loaded.add(line.strip())
            self.pins.pin(known_hosts_name(host, port), line.strip(), key.get_fingerprint())
            return True
        if self.path is None:
            return True
        try:
            path = Path(self.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="ascii") as f:
                f.write(line)
        except OSError as exc:  # as OpenSSH: warn, and connect all the same
            log.warning("cannot add the host key of %s to %s: %s", host, self.path, exc.strerror)
            return True
        self.missing = False
        log.info("added the host key of %s to %s", known_hosts_name(host, port), self.path)
        return True

    def refusal(self, address: str, port: int) -> str:
        """Why the host key of ``address:port`` was refused, in plain words."""
        where = host_port(address, port)
        if self.problem:
            return f"host key of {where} cannot be checked: {self.problem}"
        if self._listed(address, "", port):
            if self.pins is not None:
                return (f"host key mismatch for {where}: host key changed (it differs from the one pinned on "
                        f"first use); if the host was reinstalled, run `small-yi hostkeys forget "
                        f"{known_hosts_name(address, port)}`")
            return (f"host key mismatch for {where}: host key changed (it differs from the one in "
                    f"known_hosts {self.path}); if the host was reinstalled, update that entry")
        if self.path is None:
            return (f"host key mismatch for {where}: not in known_hosts (no ssh.known_hosts file is "
                    f"configured); set one, or ssh.host_key_policy: accept-new")
        if self.missing:
            return (f"host key mismatch for {where}: not in known_hosts (file {self.path} does not "
                    f"exist); add it, or set ssh.host_key_policy: accept-new")
        return (f"host key mismatch for {where}: not in known_hosts {self.path}; add it "
                f"(ssh-keyscan -p {port} {address} >> {self.path}) or set ssh.host_key_policy: accept-new")

    @staticmethod
    def _public(key: Any) -> str:
        kind, data, *_ = key.export_public_key("openssh").decode("ascii").split()
        return f"{kind} {data}"


class Trust:
    """Key and known_hosts, loaded together on the first SSH connection."""

    def __init__(self, ssh: SSHSettings, pins: PinStore | None = None, key_data: bytes | None = None) -> None:
        self.client = ClientKey(ssh.private_key, key_data)
        self.host_keys = HostKeys(ssh.host_key_policy, ssh.known_hosts, pins)
        self.generation = pins.generation if pins is not None else 0

    def stale(self, pins: PinStore | None) -> bool:
        """True when pins were forgotten since this trust was built (so it still trusts them)."""
        return pins is not None and pins.generation != self.generation
