"""Hostile SSH hosts: asyncssh servers on 127.0.0.1, port 0, with generated keys, each misbehaving in
one way a real fleet does sooner or later (see :class:`Behaviour`).

:class:`HostileFleet` starts them, writes the client key and a known_hosts file, and hands out matching
``SSHSettings`` and ``HostSpec`` objects::

    async with HostileFleet(tmp_path) as hf:
        hang = await hf.start(Behaviour.HANG)
        engine = Engine(hf.ssh_settings(connect_timeout=1), ExecutionSettings(), OutputSettings())
        await engine.run(Job(hosts=[hang.spec()], command="x", timeout=0.5, concurrency=1), rec)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from smallyi.config import SSHSettings
from smallyi.inventory.hosts import HostSpec

LOOPBACK = "127.0.0.1"
TEST_USER = "tester"


class Behaviour(enum.StrEnum):
    """How a hostile host misbehaves."""

    #: a well-behaved host: runs the command with /bin/sh on this machine and relays its output
    SHELL = "shell"
    #: accepts TCP, never says a word (no SSH banner): connecting times out
    SILENT = "silent"
    #: logs in fine, accepts the command, never answers it (no output, no exit, ignores signals)
    HANG = "hang"
    #: nothing listens on the port: connection refused
    REFUSE = "refuse"
    #: presents a host key other than the one in known_hosts
    WRONG_HOST_KEY = "wrong-host-key"
    #: rejects the client key: authentication fails
    REJECT_KEY = "reject-key"
    #: prints a few lines, then drops the TCP connection mid-output
    DROP = "drop"
    #: prints ``flood_bytes`` (100 MB by default) of 1000-byte lines, then exits 0
    FLOOD = "flood"
    #: prints ``flood_bytes`` without a single newline, then exits 0
    ENDLESS_LINE = "endless-line"
    #: prints binary and invalid UTF-8, exits 0
    BINARY = "binary"
    #: prints a line, reports exit status 0, never closes stdout (a background child holding it)
    NO_EOF = "no-eof"


BINARY_OUTPUT = b"ok \xff\xfe\xc3\x28 bad utf-8\r\n" + bytes(range(256)) + b"\nlast line, no newline \xe2\x82"


@dataclass(eq=False)
class HostileHost:
    """One running hostile host; ``connections`` counts SSH connections it accepted."""

    name: str
    behaviour: Behaviour
    port: int
    flood_bytes: int = 100 * 1024 * 1024
    connections: int = 0
    commands: list[str] = field(default_factory=list)
    _listener: Any = None
    _conns: list[Any] = field(default_factory=list)

    def spec(self, user: str = TEST_USER) -> HostSpec:
        return HostSpec(name=self.name, address=LOOPBACK, port=self.port, user=user)

    def drop_connections(self) -> None:
        """Cut every open connection (as a host reboot or a NAT timeout would)."""
        for conn in self._conns:
            conn.abort()
        self._conns.clear()

    async def stop(self) -> None:
        self.drop_connections()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            with contextlib.suppress(Exception):
                await listener.wait_closed()


class _Server(asyncssh.SSHServer):
    def __init__(self, host: HostileHost, client_key: Any) -> None:
        self._host = host
        self._client_key = client_key
        self._conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self._conn = conn
        self._host.connections += 1
        self._host._conns.append(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        with contextlib.suppress(ValueError):
            self._host._conns.remove(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: Any) -> bool:
        if self._host.behaviour == Behaviour.REJECT_KEY:
            return False
        return bool(key == self._client_key)


async def _serve(host: HostileHost, process: Any) -> None:
    """The command side of every SSH-speaking behaviour."""
    host.commands.append(process.command or "")
    out = process.stdout
    kind = host.behaviour
    try:
        if kind == Behaviour.HANG:
            await asyncio.Event().wait()
        elif kind == Behaviour.DROP:
            for i in range(3):
                out.write(f"line {i}\n".encode())
            await out.drain()
            await asyncio.sleep(0.05)
            process.channel.get_connection().abort()
            return
        elif kind in (Behaviour.FLOOD, Behaviour.ENDLESS_LINE):
            unit = b"x" * 999 + b"\n" if kind == Behaviour.FLOOD else b"y" * 1000
            block = unit * 64
            left = host.flood_bytes
            while left > 0:
                out.write(block[:left])
                left -= len(block)
                await out.drain()
        elif kind == Behaviour.BINARY:
            out.write(BINARY_OUTPUT)
        elif kind == Behaviour.NO_EOF:
            out.write(b"started a daemon\n")
            await out.drain()
            # exit status without EOF/close: what sshd sends when a background child keeps stdout
            process.channel._send_request(b"exit-status", asyncssh.packet.UInt32(0))
            await asyncio.Event().wait()
        else:  # SHELL
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", process.command or "true",
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            await asyncio.gather(_pump(proc.stdout, out), _pump(proc.stderr, process.stderr))
            process.exit(await proc.wait())
            return
        process.exit(0)
    except (OSError, asyncssh.Error, asyncio.CancelledError):
        process.close()


async def _pump(src: asyncio.StreamReader | None, dst: Any) -> None:
    assert src is not None
    while chunk := await src.read(65536):
        dst.write(chunk)
        await dst.drain()


class HostileFleet:
    """Starts hostile hosts and writes what a client needs to reach them into ``directory``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.other_key = asyncssh.generate_private_key("ssh-ed25519")
        self.key_path = self.directory / "id_ed25519"
        self.known_hosts_path = self.directory / "known_hosts"
        self.client_key.write_private_key(str(self.key_path))
        self.known_hosts_path.write_text("")
        self.hosts: list[HostileHost] = []

    async def __aenter__(self) -> HostileFleet:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def ssh_settings(self, **overrides: Any) -> SSHSettings:
        """Settings to reach these hosts: their user, key and known_hosts, strict checking."""
        values: dict[str, Any] = {
            "user": TEST_USER,
            "private_key": str(self.key_path),
            "known_hosts": str(self.known_hosts_path),
            "connect_timeout": 5.0,
        }
        values.update(overrides)
        return SSHSettings(**values)

    async def start(self, behaviour: Behaviour, name: str | None = None, *, flood_bytes: int = 0,
                    known: bool = True) -> HostileHost:
        """Start one host; ``known=False`` leaves it out of known_hosts."""
        name = name or f"{behaviour.value}-{len(self.hosts) + 1}"
        host = HostileHost(name=name, behaviour=behaviour, port=0)
        if flood_bytes:
            host.flood_bytes = flood_bytes
        if behaviour == Behaviour.REFUSE:
            host.port = _free_port()
        elif behaviour == Behaviour.SILENT:
            silent = await asyncio.start_server(_hold, LOOPBACK, 0)
            host._listener = silent
            host.port = silent.sockets[0].getsockname()[1]
        else:
            server_key = self.other_key if behaviour == Behaviour.WRONG_HOST_KEY else self.host_key
            listener = await asyncssh.listen(
                LOOPBACK, 0, server_host_keys=[server_key], encoding=None,
                server_factory=lambda: _Server(host, self.client_key.convert_to_public()),
                process_factory=lambda process: _serve(host, process),
                keepalive_interval=0,
            )
            host._listener = listener
            host.port = listener.get_port()
        if known:
            public = self.host_key.export_public_key("openssh").decode().split()[:2]
            with self.known_hosts_path.open("a") as f:
                f.write(f"[{LOOPBACK}]:{host.port} {' '.join(public)}\n")
        self.hosts.append(host)
        return host

    async def close(self) -> None:
        for host in self.hosts:
            await host.stop()


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """SILENT: keep the socket open and say nothing until the client gives up."""
    with contextlib.suppress(Exception):
        await reader.read()
    writer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])
