"""Interactive shells over SSH with a pseudo-terminal, for the web terminal (and, for the built-in
``local`` host, on the server itself: :mod:`.local_pty`).

One dedicated connection per shell (never the engine's pool: a shell lives for minutes and must not
hold a slot that tasks need). Keys, known_hosts and the host-key policy are the same as for commands
(:class:`~smallyi.execution.connectors.ssh_keys.Trust`), so a host the engine refuses is refused here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import asyncssh

from smallyi.config import SSHSettings
from smallyi.errors import ConnectTimeout, HostUnreachable, InputError
from smallyi.execution.connectors import local_pty
from smallyi.execution.connectors.ssh_keys import (
    PinStore,
    SecretReader,
    Trust,
    TrustBook,
    auth_refused,
    client_options,
    connect_timeout,
    host_port,
    openssh_config,
)
from smallyi.inventory.hosts import HostSpec

log = logging.getLogger(__name__)

TERM = "xterm-256color"
MAX_COLS, MAX_ROWS = 1000, 500


def clamp_size(cols: int, rows: int) -> tuple[int, int]:
    """A terminal size the PTY accepts: at least 10x3, at most 1000x500."""
    return max(10, min(int(cols), MAX_COLS)), max(3, min(int(rows), MAX_ROWS))


class Shell(Protocol):
    """What the web terminal drives: an SSH :class:`PtySession` or a local one."""

    async def read(self) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    async def wait_exit(self, timeout: float = 2.0) -> None: ...
    @property
    def exit_status(self) -> int | None: ...
    async def close(self) -> None: ...


class _Client(asyncssh.SSHClient):
    def __init__(self, trust: Trust) -> None:
        self._trust = trust

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        return self._trust.host_keys.accept(host, addr, port, key)


class PtySession:
    """A login shell on a host: bytes in, bytes out, a size that can change, an exit status."""

    def __init__(self, conn: asyncssh.SSHClientConnection, process: Any) -> None:
        self._conn = conn
        self._process = process

    async def read(self) -> bytes:
        """The next output bytes; ``b""`` once the shell has ended."""
        try:
            data: bytes = await self._process.stdout.read(65536)
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError):
            return b""
        return data

    def write(self, data: bytes) -> None:
        with contextlib.suppress(asyncssh.Error, OSError, BrokenPipeError):
            self._process.stdin.write(data)

    def resize(self, cols: int, rows: int) -> None:
        cols, rows = clamp_size(cols, rows)
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.change_terminal_size(cols, rows)

    async def wait_exit(self, timeout: float = 2.0) -> None:
        """Give a shell that is ending a moment to report its exit status."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._process.wait_closed(), timeout)

    @property
    def exit_status(self) -> int | None:
        status = self._process.exit_status
        return int(status) if status is not None else None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._process.close()
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), 5)


class PtyConnector:
    """Opens :class:`PtySession` s with the config's SSH settings."""

    def __init__(self, ssh: SSHSettings, *, pins: PinStore | None = None, key_data: bytes | None = None,
                 secrets: SecretReader | None = None) -> None:
        self._ssh = ssh
        self._trusts = TrustBook(ssh, client_options, pins=pins, key_data=key_data, secrets=secrets)

    def login_user(self, host: HostSpec) -> str:
        if host.connector == "local":
            return local_pty.server_user().pw_name
        return host.user or self._ssh.user

    async def open(self, host: HostSpec, *, cols: int, rows: int) -> Shell:
        """Connect and start the login shell of the host's user on a PTY of ``cols`` x ``rows``
        (on a ``local`` host: the server user's shell on the server)."""
        if host.connector == "local":
            return await local_pty.open_shell(cols=cols, rows=rows)
        if host.connector != "ssh":
            raise InputError(
                f"host {host.name} is not reached over SSH (connector {host.connector}); "
                "the web terminal needs an SSH host or the local one", field="host",
            )
        trust, options = await self._trusts.get(host.ssh.trust)
        limit = connect_timeout(self._ssh, host.ssh)
        address, port, user = host.address, host.port, self.login_user(host)
        where = host_port(address, port)
        if trust.client.problem:
            raise HostUnreachable(trust.client.problem)
        if trust.host_keys.problem and trust.host_keys.policy != "off":
            raise trust.host_keys.refused(address, port)
        cols, rows = clamp_size(cols, rows)
        try:
            async with asyncio.timeout(limit):
                conn = await asyncssh.connect(
                    address, port, options=options, config=openssh_config(trust, self._ssh), username=user,
                    client_factory=lambda: _Client(trust),
                )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise trust.host_keys.refused(address, port) from exc
        except asyncssh.PermissionDenied as exc:
            raise HostUnreachable(
                f"authentication failed for user {user} on {where}: {auth_refused(trust, self._ssh)}") from exc
        except TimeoutError as exc:
            raise ConnectTimeout(f"connect to {where} timed out after {limit:g}s") from exc
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachable(f"{where}: {_describe(exc)}") from exc
        try:
            process = await conn.create_process(
                term_type=TERM, term_size=(cols, rows), encoding=None, request_pty="force"
            )
        except (OSError, asyncssh.Error) as exc:
            conn.close()
            raise HostUnreachable(f"{where}: cannot start a shell: {_describe(exc)}") from exc
        log.info("terminal: shell opened on %s as %s", where, user)
        return PtySession(conn, process)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
