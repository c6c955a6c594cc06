"""The SSH connectors' trust material: the client key and known_hosts, read once per set of settings.

Reading them per host would cost a file parse per connection; reading them at import or engine
construction would fail a server that never uses SSH. So they load on first use, and a problem
(missing key file, unreadable known_hosts) becomes a clear reason on every SSH host instead of a crash.
Hosts with SSH settings of their own (``HostSpec.ssh``) get a trust of their own, one per distinct
set of settings (:class:`TrustBook`), so a thousand hosts sharing one key still parse it once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import asyncssh

from smallyi.config import SSHSettings
from smallyi.errors import HostKeyMismatch, HostKeyUnknown, HostUnreachable, NotFound
from smallyi.inventory.hosts import SSHOverrides

log = logging.getLogger(__name__)


def host_port(address: str, port: int) -> str:
    """``127.0.1.5:2222``; IPv6 addresses bracketed."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def known_hosts_name(address: str, port: int) -> str:
    """The host field of a known_hosts line, as OpenSSH writes it."""
    return address if port == 22 else f"[{address}]:{port}"


class ClientKey:
    """The configured private key (only that one: no agent, no ~/.ssh defaults), or none configured.

    ``data`` (the key itself, decrypted from the secret store) wins over ``path``. With neither, the key
    is ``ssh``'s choice (``defaults``): the agent's keys, ~/.ssh/config's IdentityFile, ~/.ssh/id_*, which
    asyncssh looks up per connection.
    """

    def __init__(self, path: str | None, data: bytes | None = None, secret: str | None = None) -> None:
        self.path = path
        self.keys: list[Any] | None = None
        #: no key configured: authenticate as ``ssh`` would
        self.defaults = path is None and data is None
        #: why no key could be used, as the reason every SSH host fails with
        self.problem: str | None = None
        if data is not None:
            self.path = f"(secret {secret})" if secret else "(from the secret store)"
            try:
                self.keys = [asyncssh.import_private_key(data)]
            except (asyncssh.KeyImportError, ValueError) as exc:
                where = f"secret {secret!r}" if secret else "ssh.private_key_secret"
                self.problem = f"the private key in {where} cannot be used: {exc}"
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


def file_stamp(path: str | None) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a file, or None when there is none: one stat, cheap per connection."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class HostKeys:
    """known_hosts under a policy: ``strict``, ``accept-new`` (pin unknown keys) or ``off``.

    With a :class:`PinStore`, accept-new pins keys there (and trusts its pins) instead of appending
    to the known_hosts file; under strict and accept-new alike a changed key is reported to it (it
    logs and audits the refusal).
    """

    def __init__(self, policy: str, path: str | None, pins: PinStore | None = None) -> None:
        self.policy = policy
        self.path = path
        #: pinned keys are trusted under strict too (pinned on first use under accept-new, or confirmed with
        #: ``small-yi hostkeys scan``); only accept-new pins new keys by itself
        self.pins = pins if policy != "off" else None
        self._reports = pins if policy != "off" else None
        self._loaded: set[str] = set()
        self.known = asyncssh.SSHKnownHosts()
        self.missing = False
        self.problem: str | None = None
        self._warned = False
        #: the file as read (inode, size, mtime), stat'ed before reading: an edit made afterwards shows
        self.stamp = file_stamp(path) if policy != "off" else None
        if policy != "off" and path is not None:  # off: never consulted; no file: nothing is known
            try:
                self.known = asyncssh.read_known_hosts(path)
            except FileNotFoundError:
                self.missing = True
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                self.problem = f"known_hosts file {path} cannot be read: {why}"
        self.sync()

    def changed_on_disk(self) -> bool:
        """True when the known_hosts file was edited (or created, or removed) since it was read.

        OpenSSH reads known_hosts at every connection; a server that read it once would go on refusing a
        host whose line an operator just added (or trusting one whose line was removed) until a restart.
        """
        return self.policy != "off" and self.path is not None and file_stamp(self.path) != self.stamp

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
            self.stamp = file_stamp(self.path)  # our own line is loaded already: no need to read the file again
        except OSError as exc:  # as OpenSSH: warn, and connect all the same
            log.warning("cannot add the host key of %s to %s: %s", host, self.path, exc.strerror)
            return True
        self.missing = False
        log.info("added the host key of %s to %s", known_hosts_name(host, port), self.path)
        return True

    def trusted(self, address: str, port: int, key: Any) -> str:
        """``known`` (trusted for this host), ``unknown`` (no key trusted for it) or ``changed``."""
        listed = self._listed(address, "", port)
        if not listed:
            return "unknown"
        return "known" if key in listed else "changed"

    def refused(self, address: str, port: int) -> HostUnreachable:
        """Why the host key of ``address:port`` was refused, as the error the host fails with."""
        where = host_port(address, port)
        if self.problem:
            return HostKeyMismatch(f"host key of {where} cannot be checked: {self.problem}")
        if self._listed(address, "", port):
            hints = []
            if self.pins is not None:
                hints.append(f"run `small-yi hostkeys forget {known_hosts_name(address, port)}` if small-yi pinned it")
            if self.path is not None:
                hints.append(f"update its entry in known_hosts {self.path}")
            return HostKeyMismatch(f"host key mismatch for {where}: host key changed (it differs from the trusted "
                                   f"one); if the host was reinstalled, {' or '.join(hints)}")
        scan = "review and trust it with `small-yi hostkeys scan`"
        if self.path is None:
            where_not = "no ssh.known_hosts file is configured"
        elif self.missing:
            where_not = f"known_hosts file {self.path} does not exist"
        else:
            where_not = f"not in known_hosts {self.path}"
        return HostKeyUnknown(f"unknown host key for {where}: {where_not} and no key is pinned for it; {scan}, "
                              "or set ssh.host_key_policy: accept-new")

    @staticmethod
    def _public(key: Any) -> str:
        kind, data, *_ = key.export_public_key("openssh").decode("ascii").split()
        return f"{kind} {data}"


class Trust:
    """Key and known_hosts, loaded together on the first SSH connection."""

    def __init__(self, ssh: SSHSettings, pins: PinStore | None = None, key_data: bytes | None = None,
                 secret: str | None = None) -> None:
        self.client = ClientKey(ssh.private_key, key_data, secret)
        self.host_keys = HostKeys(ssh.host_key_policy, ssh.known_hosts, pins)
        self.generation = pins.generation if pins is not None else 0

    def stale(self, pins: PinStore | None) -> bool:
        """True when pins were forgotten or the known_hosts file was edited since this trust was built."""
        return (pins is not None and pins.generation != self.generation) or self.host_keys.changed_on_disk()


def host_settings(ssh: SSHSettings, own: SSHOverrides) -> SSHSettings:
    """The config's SSH settings with a host's own on top (a host naming a key uses neither of the config's)."""
    if not own:
        return ssh
    update: dict[str, Any] = {}
    if own.sets_key:
        update["private_key"] = os.path.expanduser(own.private_key) if own.private_key else None
        update["private_key_secret"] = own.private_key_secret
    if own.known_hosts is not None:
        update["known_hosts"] = os.path.expanduser(own.known_hosts)
    if own.host_key_policy is not None:
        update["host_key_policy"] = own.host_key_policy
    if own.connect_timeout is not None:
        update["connect_timeout"] = own.connect_timeout
    return ssh.model_copy(update=update)


def openssh_config(trust: Trust, ssh: SSHSettings) -> list[str] | None:
    """The OpenSSH client config asyncssh applies per host: only when no key is configured, as ``ssh``."""
    if not trust.client.defaults or not ssh.config_file or not os.path.isfile(ssh.config_file):
        return None
    return [ssh.config_file]


def auth_refused(trust: Trust, ssh: SSHSettings) -> str:
    """Why a login was refused, naming the keys that were offered."""
    if trust.client.defaults:
        tried = ["~/.ssh/id_* files"]
        if ssh.agent:
            tried.insert(0, "the ssh-agent" if os.environ.get("SSH_AUTH_SOCK") else "no ssh-agent ($SSH_AUTH_SOCK unset)")
        if openssh_config(trust, ssh):
            tried.insert(-1, f"IdentityFile of {ssh.config_file}")
        return f"no key was accepted (no ssh.private_key is set; tried {', '.join(tried)})"
    return f"the server refused key {trust.client.path}" if trust.client.keys else "no private key"


def connect_timeout(ssh: SSHSettings, own: SSHOverrides) -> float:
    """The connect timeout for a host: its own, else the config's."""
    return own.connect_timeout if own.connect_timeout is not None else ssh.connect_timeout


def client_options(trust: Trust, ssh: SSHSettings, *,
                   encryption_algs: list[str] | None = None) -> asyncssh.SSHClientConnectionOptions:
    """asyncssh's options for a trust: its known_hosts, and its key only (no agent, no ~/.ssh, no passwords)
    or, with no key configured, ssh's defaults (the agent unless ``ssh.agent`` is off, ~/.ssh/id_*)."""
    ka = ssh.keepalive_interval
    extra: dict[str, Any] = {"encryption_algs": encryption_algs} if encryption_algs else {}
    if not trust.client.defaults:
        extra.update(client_keys=trust.client.keys, agent_path=None)
    elif not ssh.agent:
        extra.update(agent_path=None)
    return asyncssh.SSHClientConnectionOptions(
        known_hosts=trust.host_keys.connect_arg(),
        config=None,
        x509_trusted_certs=None,
        gss_auth=False,
        gss_kex=False,
        host_based_auth=False,
        kbdint_auth=False,
        password_auth=False,
        public_key_auth=trust.client.keys is not None or trust.client.defaults,
        keepalive_interval=ka if ka > 0 else 0,
        keepalive_count_max=3,
        **extra,
    )


Opts = TypeVar("Opts")
#: reads a stored secret's value by name (NotFound when there is none)
SecretReader = Callable[[str], Awaitable[str]]
#: a host's key secret is read again after this long, so a key replaced with ``secrets set`` is used
SECRET_TTL = 30.0


class _Entry(Generic[Opts]):
    __slots__ = ("key_data", "options", "read_at", "settings", "trust")

    def __init__(self, settings: SSHSettings, trust: Trust, options: Opts, key_data: bytes | None) -> None:
        self.settings = settings
        self.trust = trust
        self.options = options
        self.key_data = key_data
        self.read_at = time.monotonic()


class TrustBook(Generic[Opts]):
    """One :class:`Trust` and connection options object per distinct host trust settings.

    The config's settings are the entry for hosts without their own; ``build`` makes a connector's
    options from a trust and its settings. A host's ``private_key_secret`` is read through ``secrets``
    (at most every :data:`SECRET_TTL` seconds) and never kept anywhere but in the parsed key.
    """

    def __init__(self, ssh: SSHSettings, build: Callable[[Trust, SSHSettings], Opts], *, pins: PinStore | None = None,
                 key_data: bytes | None = None, secrets: SecretReader | None = None) -> None:
        self.ssh = ssh
        self._build = build
        self._pins = pins
        self._key_data = key_data
        self._secrets = secrets
        self._entries: dict[SSHOverrides, _Entry[Opts]] = {}

    @property
    def default(self) -> Trust | None:
        """The trust of hosts without settings of their own, once built."""
        entry = self._entries.get(SSHOverrides())
        return entry.trust if entry is not None else None

    async def get(self, own: SSHOverrides) -> tuple[Trust, Opts]:
        """The trust and options for a host with settings ``own`` (its ``.trust`` part), up to date."""
        if self._pins is not None:
            await self._pins.refresh()  # keys another process pinned meanwhile
        entry = self._entries.get(own)
        key_data = self._key_data
        secret = own.private_key_secret
        if secret is not None:
            if entry is not None and time.monotonic() - entry.read_at < SECRET_TTL:
                key_data = entry.key_data
            else:
                key_data = await self._read(secret)
        if entry is None or entry.trust.stale(self._pins) or entry.key_data != key_data:
            settings = host_settings(self.ssh, own)
            trust = Trust(settings, self._pins, key_data, secret)
            if secret is not None and key_data is None:
                trust.client.problem = (f"the host's key secret {secret!r} does not exist; store it with "
                                        f"`small-yi secrets set {secret} --kind ssh-key --file KEYFILE`")
            entry = self._entries[own] = _Entry(settings, trust, self._build(trust, settings), key_data)
        elif secret is not None:
            entry.read_at = time.monotonic()
        entry.trust.host_keys.sync()
        return entry.trust, entry.options

    async def _read(self, name: str) -> bytes | None:
        if self._secrets is None:
            return None
        try:
            return (await self._secrets(name)).encode()
        except NotFound:
            return None
