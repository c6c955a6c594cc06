"""A scripted connector for tests: no network, same duties and the same pool as the real one.

Each host's behaviour is a :class:`FakeHost` (output, exit, delays, unreachable). The connector
counts what a test wants to assert: connections opened, commands run, sessions at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from smallyi.errors import HostUnreachable
from smallyi.execution.connectors.base import Connector, Exit, RunContext
from smallyi.execution.pool import Key, Pool
from smallyi.inventory.hosts import HostSpec


@dataclass
class FakeHost:
    """What a fake host does when a command runs on it."""

    stdout: list[bytes | str] = field(default_factory=list)
    stderr: list[bytes | str] = field(default_factory=list)
    exit_code: int = 0
    signal: str | None = None
    #: seconds the command runs (after its output); ``float("inf")`` never ends
    duration: float = 0.0
    connect_delay: float = 0.0
    #: if set, connecting fails with this reason
    unreachable: str | None = None


class _FakeConn:
    def __init__(self) -> None:
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class FakeConnector(Connector):
    """Runs nothing; plays each host's :class:`FakeHost` (default: prints ``<host>: <command>``)."""

    def __init__(
        self,
        hosts: Mapping[str, FakeHost] | Callable[[HostSpec, str], FakeHost] | None = None,
        *,
        pool_max_size: int = 1000,
        pool_idle_timeout: float = 300.0,
    ) -> None:
        self._hosts = hosts
        self.pool: Pool[_FakeConn] = Pool(max_size=pool_max_size, idle_timeout=pool_idle_timeout)
        self.commands: list[tuple[str, str]] = []
        self.stopped: list[str] = []
        self.active = 0
        self.max_active = 0

    @property
    def connects(self) -> int:
        return self.pool.opened

    def behaviour(self, host: HostSpec, command: str) -> FakeHost:
        if callable(self._hosts):
            return self._hosts(host, command)
        if self._hosts is not None and host.name in self._hosts:
            return self._hosts[host.name]
        return FakeHost(stdout=[f"{host.name}: {command}"])

    def _key(self, host: HostSpec) -> Key:
        return (host.address, host.port, host.user)

    def needs_connection(self, host: HostSpec) -> bool:
        return not self.pool.has_usable(self._key(host))

    def drop_connections(self) -> None:
        """Kill every pooled connection, as a network cut would (the pool finds them dead)."""
        for lease in self.pool.leases():
            lease.conn.close()

    def stats(self) -> dict[str, int]:
        return {**self.pool.stats(), "max_active": self.max_active}

    async def close(self) -> None:
        await self.pool.close()

    def retire(self) -> None:
        self.pool.retire()

    async def run(self, ctx: RunContext) -> Exit:
        plan = self.behaviour(ctx.host, ctx.command)

        async def connect() -> _FakeConn:
            await ctx.admit()
            if plan.connect_delay:
                await asyncio.sleep(plan.connect_delay)
            if plan.unreachable:
                raise HostUnreachable(plan.unreachable)
            return _FakeConn()

        lease, _ = await self.pool.acquire(self._key(ctx.host), connect)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            ctx.command_started()
            self.commands.append((ctx.host.name, ctx.command))
            for stream, lines in ((ctx.stdout, plan.stdout), (ctx.stderr, plan.stderr)):
                for line in lines:
                    stream.feed(line if isinstance(line, bytes) else line.encode() + b"\n")
            if plan.duration:
                try:
                    await asyncio.sleep(plan.duration if plan.duration != float("inf") else 1e9)
                except asyncio.CancelledError:
                    self.stopped.append(ctx.host.name)
                    raise
            return Exit(None if plan.signal else plan.exit_code, plan.signal)
        finally:
            self.active -= 1
            self.pool.release(lease)
