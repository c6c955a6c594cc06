"""The SSH connector's pooled channels (commands and SFTP alike): retry on a dead pooled connection,
the server's MaxSessions, and no retry on a connection just opened."""

from __future__ import annotations

from typing import Any

import asyncssh
import pytest

from smallyi.config import SSHSettings
from smallyi.errors import HostUnreachable
from smallyi.execution.connectors.ssh import SSHConnector
from smallyi.inventory.hosts import HostSpec


class Conn:
    """A connection the pool can only close; it has no asyncssh client to tell of its loss."""

    closed = False

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_owner(self) -> None:
        return None


class Gate:
    async def admit(self) -> None:
        pass


def connector(monkeypatch: pytest.MonkeyPatch) -> tuple[SSHConnector, list[Conn]]:
    ssh = SSHConnector(SSHSettings())
    opened: list[Conn] = []

    async def connect(ctx: Any, key: Any) -> Conn:
        opened.append(Conn())
        return opened[-1]

    monkeypatch.setattr(ssh, "_connect", connect)
    return ssh, opened


KEY_HOST = HostSpec(name="h", address="10.0.0.1")
REFUSED = asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "no more sessions")


async def test_max_sessions_refusal_caps_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy connection refusing one more channel keeps its sessions, takes no more; another one opens."""
    ssh, opened = connector(monkeypatch)
    key = ssh._key(KEY_HOST)

    async def open_channel(conn: Any) -> str:
        if conn is opened[0] and ssh.pool.leases()[0].active > 1:
            raise REFUSED
        return f"chan{opened.index(conn)}"

    async with ssh._channel(key, Gate(), open_channel, "a session") as (conn, chan):
        assert chan == "chan0" and conn is opened[0]
        async with ssh._channel(key, Gate(), open_channel, "a session") as (conn2, chan2):
            assert chan2 == "chan1" and conn2 is opened[1]
            first = next(lease for lease in ssh.pool.leases() if lease.conn is opened[0])
            assert first.limit == 1 and not first.gone and not opened[0].closed
    assert ssh.pool.stats()["sessions"] == 0 and len(ssh.pool) == 2


async def test_dead_pooled_connection_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel that fails on a pooled connection discards it and opens the channel on a new one."""
    ssh, opened = connector(monkeypatch)
    key = ssh._key(KEY_HOST)
    async with ssh._channel(key, Gate(), lambda conn: _ok(conn), "a session"):
        pass

    async def open_channel(conn: Any) -> str:
        if conn is opened[0]:
            raise ConnectionResetError()
        return "fresh"

    async with ssh._channel(key, Gate(), open_channel, "an SFTP session") as (conn, chan):
        assert chan == "fresh" and conn is opened[1]
    assert opened[0].closed and len(ssh.pool) == 1


async def test_fresh_connection_refusing_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No retry on a connection just opened: the host is unreachable, named, and the connection dropped."""
    ssh, opened = connector(monkeypatch)

    async def open_channel(conn: Any) -> str:
        raise REFUSED

    with pytest.raises(HostUnreachable, match=r"10\.0\.0\.1:22: cannot open an SFTP session: no more sessions"):
        async with ssh._channel(ssh._key(KEY_HOST), Gate(), open_channel, "an SFTP session"):
            pass
    assert len(opened) == 1 and opened[0].closed and len(ssh.pool) == 0


async def test_other_errors_release_and_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error that is not a failed channel open is not retried; the lease is released."""
    ssh, opened = connector(monkeypatch)

    async def open_channel(conn: Any) -> str:
        raise HostUnreachable("the session failed as the command started")

    with pytest.raises(HostUnreachable, match="as the command started"):
        async with ssh._channel(ssh._key(KEY_HOST), Gate(), open_channel, "a session"):
            pass
    stats = ssh.pool.stats()
    assert len(opened) == 1 and stats["sessions"] == 0 and stats["connections"] == 1


async def _ok(conn: Any) -> str:
    return "ok"
