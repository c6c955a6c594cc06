"""Run commands over SSH with asyncssh, on pooled connections.

Layering, as asyncssh's own: pool (``execution.pool``) → connection (:class:`_Client` watches it) →
channel → :class:`_Session`, whose callbacks feed the line splitters directly: no stream readers, no
task per host, no copy of the output. Key and known_hosts are read once per distinct set of SSH
settings (``ssh_keys.TrustBook``: the config's, and each host's own), the options object built once.

A command is never sent twice: a session whose channel could not be opened on a pooled connection is
retried on a new connection only if :meth:`_Session.connection_made` (after which the command goes
out) never ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import asyncssh

from smallyi import compat
from smallyi.config import SSHSettings
from smallyi.errors import ConnectTimeout, HostUnreachable
from smallyi.execution.connectors import sftp as sftp_ops
from smallyi.execution.connectors import ssh_keys
from smallyi.execution.connectors.base import Connector, Exit, RunContext
from smallyi.execution.connectors.ssh_keys import PinStore, SecretReader, Trust, TrustBook, host_port
from smallyi.execution.files import Admit, FilePut, FileResult
from smallyi.execution.pool import Lease, Pool
from smallyi.inventory.hosts import HostSpec, SSHOverrides

log = logging.getLogger(__name__)

SSHConn = asyncssh.SSHClientConnection

#: attempts at opening a session before giving up (the first may hit a pooled connection that died)
_ATTEMPTS = 3

#: asyncssh's default ciphers with AES-GCM moved first. asyncssh prefers chacha20-poly1305, which it
#: runs as two new cipher objects and a Poly1305 per packet; AES-GCM is one AEAD call (AES-NI on both
#: ends). Same security, the same list otherwise: about a fifth less client CPU per cold host.
_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"] + [
    alg.decode("ascii") for alg in asyncssh.encryption.get_default_encryption_algs()
    if alg not in (b"aes128-gcm@openssh.com", b"aes256-gcm@openssh.com")
]

T = TypeVar("T")
#: what tells pooled connections apart: address, port, login user, and the host's own key and host-key settings
Key = tuple[str, int, str, SSHOverrides]


class _Admits(Protocol):
    async def admit(self) -> None: ...


class _Gate:
    """A file transfer's rate admission in the shape ``_connect`` takes (a RunContext's ``admit``)."""

    def __init__(self, admit: Admit) -> None:
        self._admit = admit

    async def admit(self) -> None:
        await self._admit()


class _Client(asyncssh.SSHClient):
    """Per connection: decides on unknown host keys, and tells the pool when the connection dies."""

    def __init__(self, connector: SSHConnector, trust: Trust) -> None:
        self._connector = connector
        self._trust = trust
        self.lease: Lease[SSHConn] | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        """Called by asyncssh only for a key known_hosts does not trust: accept-new may take it."""
        return self._trust.host_keys.accept(host, addr, port, key)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lease is not None:
            self._connector.pool.discard(self.lease)


class _Session(asyncssh.SSHClientSession[bytes]):
    """One command's channel: bytes straight into the splitters; the outcome into ``done``."""

    def __init__(self, ctx: RunContext, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self._out = ctx.stdout
        self._err = ctx.stderr
        self.chan: Any = None
        self.done: asyncio.Future[tuple[Exception | None, str]] = loop.create_future()
        self.status: int | None = None
        self.signal: str | None = None
        self._linger: asyncio.TimerHandle | None = None
        #: set once we asked the command to stop
        self.stopping = False

    def factory(self) -> _Session:
        return self

    def connection_made(self, chan: Any) -> None:
        self.chan = chan
        self._ctx.command_started()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        try:
            if datatype == asyncssh.EXTENDED_DATA_STDERR:
                self._err.feed(data)
            else:
                self._out.feed(data)
        except Exception as exc:  # the caller's emit failed: end this host, keep the connection
            log.exception("emitting output of %s failed", self._ctx.host.name)
            self._finish(exc, "")
            self.chan.abort()

    def exit_status_received(self, status: int) -> None:
        self.status = status
        self._start_linger()

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.signal = signal
        self._start_linger()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc, "")

    def _start_linger(self) -> None:
        # the command has ended; its output should close right behind. A background child holding
        # stdout open must not turn a finished command into a timeout: wait kill_grace, then close.
        # Being stopped (timeout, cancel), it ended from our TERM: close at once.
        if self.stopping:
            self._finish(None, "")
            self.chan.close()
        elif self._linger is None and not self.done.done():
            self._linger = self._loop.call_later(max(self._ctx.kill_grace, 0.05), self._stop_lingering)

    def _stop_lingering(self) -> None:
        self._finish(None, "output was still open after the command exited; closed it")
        if self.chan is not None:
            self.chan.close()

    def _finish(self, exc: Exception | None, note: str) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if not self.done.done():
            self.done.set_result((exc, note))


class SSHConnector(Connector):
    """Hosts reached over SSH (``connector: ssh``, the default)."""

    def __init__(self, ssh: SSHSettings, *, pins: PinStore | None = None, key_data: bytes | None = None,
                 secrets: SecretReader | None = None) -> None:
        asyncssh_log = logging.getLogger("asyncssh")
        if asyncssh_log.level == logging.NOTSET:
            # asyncssh logs ~10 INFO lines per host and command (command text included): at fleet
            # scale that is noise and CPU. Set the "asyncssh" logger's level yourself to see them.
            asyncssh_log.setLevel(logging.WARNING)
        compat.guard_asyncssh_logs()  # formats only the records that are logged
        self._ssh = ssh
        self.pool: Pool[SSHConn] = Pool(max_size=ssh.pool_max_size, idle_timeout=ssh.pool_idle_timeout)
        #: pins: accept-new pins in the database (None: in the known_hosts file); key_data: the config's
        #: private key from the secret store (None: read ssh.private_key); secrets: reads hosts' key secrets
        self.trusts = TrustBook(ssh, _options, pins=pins, key_data=key_data, secrets=secrets)

    def _key(self, host: HostSpec) -> Key:
        return (host.address, host.port, host.user or self._ssh.user, host.ssh.trust)

    def needs_connection(self, host: HostSpec) -> bool:
        return not self.pool.has_usable(self._key(host))

    def stats(self) -> dict[str, int]:
        return self.pool.stats()

    async def close(self) -> None:
        await self.pool.close()

    def retire(self) -> None:
        self.pool.retire()

    async def run(self, ctx: RunContext) -> Exit:
        key = self._key(ctx.host)
        loop = asyncio.get_running_loop()

        async def start(conn: SSHConn) -> _Session:
            session = _Session(ctx, loop)
            try:
                await conn.create_session(session.factory, ctx.command, encoding=None)
            except BaseException as exc:
                if session.chan is None:  # the command did not go out: _channel may retry
                    raise
                if isinstance(exc, asyncio.CancelledError):
                    await self._stop(session, ctx.kill_grace)
                    raise
                raise HostUnreachable(  # the command may have gone out: never resend it
                    f"{host_port(key[0], key[1])}: the session failed as the command started "
                    f"({exc}); it may or may not have run"
                ) from exc
            return session

        async with self._channel(key, ctx, start, "a session") as (_, session):
            with contextlib.suppress(OSError):  # already closed: the command was quick
                session.chan.write_eof()  # the command gets no input: `cat` must not wait for any
            return await self._wait(session, ctx, key)

    @contextlib.asynccontextmanager
    async def _channel(
        self, key: Key, ctx: _Admits, open_channel: Callable[[SSHConn], Awaitable[T]], what: str
    ) -> AsyncIterator[tuple[SSHConn, T]]:
        """A channel opened by ``open_channel`` on a pooled connection, the lease held while it is used.

        A channel that cannot be opened (ChannelOpenError, DisconnectError, OSError from
        ``open_channel``) is retried on another connection, up to ``_ATTEMPTS`` times, unless the
        connection was just opened. A refusal as administratively prohibited while the connection
        carries other sessions is the server's MaxSessions: that connection keeps its sessions but
        takes no more; any other failure discards the connection.
        """
        for attempt in range(1, _ATTEMPTS + 1):
            lease, fresh = await self.pool.acquire(key, lambda: self._connect(ctx, key))
            if fresh:
                owner = lease.conn.get_owner()
                if isinstance(owner, _Client):
                    owner.lease = lease  # from now on its loss is reported to the pool
            try:
                channel = await open_channel(lease.conn)
            except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError) as exc:
                self.pool.release(lease)
                if isinstance(exc, asyncssh.ChannelOpenError) and exc.code == \
                        asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED and lease.active > 0:
                    lease.limit = lease.active  # the server's MaxSessions: use another connection
                else:
                    self.pool.discard(lease)
                if fresh or attempt == _ATTEMPTS:
                    raise HostUnreachable(
                        f"{host_port(key[0], key[1])}: cannot open {what}: {_describe(exc)}"
                    ) from exc
                continue
            except BaseException:
                self.pool.release(lease)
                raise
            try:
                yield lease.conn, channel
            finally:
                self.pool.release(lease)
            return
        raise AssertionError("unreachable")  # pragma: no cover

    async def _wait(self, session: _Session, ctx: RunContext, key: Key) -> Exit:
        try:
            exc, note = await asyncio.shield(session.done)  # shielded: _stop still waits on it
        except asyncio.CancelledError:
            await self._stop(session, ctx.kill_grace)
            raise
        if exc is not None and not isinstance(exc, asyncssh.Error | OSError):
            raise exc  # ours (a failing emit), not the host's
        if session.status is not None or session.signal is not None:
            return Exit(session.status, session.signal, note)
        if exc is not None:
            raise HostUnreachable(
                f"connection to {host_port(key[0], key[1])} lost while the command ran; "
                f"its outcome is unknown: {_describe(exc)}"
            ) from exc
        return Exit(note="the host closed the session without an exit status")

    @staticmethod
    async def _stop(session: _Session, grace: float) -> None:
        """Timeout or cancel: ask the command to stop (TERM), give it ``grace``, close the channel."""
        chan = session.chan
        if chan is None or session.done.done():
            return
        session.stopping = True
        try:
            chan.send_signal("TERM")
            if grace > 0:
                await asyncio.wait({session.done}, timeout=grace)
        except (OSError, asyncssh.Error):
            pass
        finally:
            chan.close()

    async def put_files(self, host: HostSpec, files: Sequence[FilePut], admit: Admit) -> list[FileResult]:
        return await self._with_sftp(host, admit, lambda conn, sftp: sftp_ops.put_files(conn, sftp, files))

    async def get_files(self, host: HostSpec, paths: Sequence[str], admit: Admit) -> list[FileResult]:
        return await self._with_sftp(host, admit, lambda conn, sftp: sftp_ops.get_files(sftp, paths))

    async def _with_sftp(
        self, host: HostSpec, admit: Admit, op: Callable[[SSHConn, asyncssh.SFTPClient], Awaitable[T]]
    ) -> T:
        """Run ``op`` in an SFTP session on a pooled connection; a dead pooled connection is replaced."""
        key = self._key(host)
        async with self._channel(key, _Gate(admit), lambda conn: conn.start_sftp_client(), "an SFTP session") \
                as (conn, sftp):
            try:
                return await op(conn, sftp)
            except (asyncssh.Error, OSError) as exc:
                raise HostUnreachable(f"connection to {host_port(key[0], key[1])} lost during a file transfer: "
                                      f"{_describe(exc)}") from exc
            finally:
                sftp.exit()

    async def _connect(self, ctx: _Admits, key: Key) -> SSHConn:
        address, port, user, own = key
        trust, options = await self.trusts.get(own)
        if trust.client.problem:
            raise HostUnreachable(trust.client.problem)
        if trust.host_keys.problem and trust.host_keys.policy != "off":
            raise trust.host_keys.refused(address, port)
        await ctx.admit()
        client = _Client(self, trust)
        try:
            conn: SSHConn = await asyncssh.connect(
                address, port, options=options, config=ssh_keys.openssh_config(trust, self._ssh), username=user,
                client_factory=lambda: client,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise trust.host_keys.refused(address, port) from exc
        except asyncssh.PermissionDenied as exc:
            why = ssh_keys.auth_refused(trust, self._ssh)
            raise HostUnreachable(
                f"authentication failed for user {user} on {host_port(address, port)}: {why}"
            ) from exc
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"connect to {host_port(address, port)} timed out after "
                f"{ssh_keys.connect_timeout(self._ssh, own):g}s"
            ) from exc
        except (OSError, asyncssh.Error) as exc:
            raise HostUnreachable(f"{host_port(address, port)}: {_describe(exc)}") from exc
        if conn.is_closed():  # lost between handshake and now: _Client could not tell the pool
            raise HostUnreachable(f"{host_port(address, port)}: connection closed right after login")
        return conn


def _options(trust: Trust, ssh: SSHSettings) -> asyncssh.SSHClientConnectionOptions:
    return ssh_keys.client_options(trust, ssh, encryption_algs=_CIPHERS)


def _describe(exc: BaseException) -> str:
    """An OS or asyncssh error in plain words, most specific first."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the address: {exc.strerror}"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the host"
    if isinstance(exc, asyncssh.ConnectionLost):
        detail = exc.reason if exc.reason and exc.reason.lower() != "connection lost" else ""
        return f"connection lost ({detail})" if detail else "connection lost"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"the host closed the connection: {exc.reason}"
    if isinstance(exc, asyncssh.ChannelOpenError):
        return exc.reason or "channel open failed"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
