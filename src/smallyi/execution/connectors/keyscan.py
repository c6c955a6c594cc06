"""Fetch hosts' SSH host keys without logging in (``small-yi hostkeys scan``), and judge each against what
small-yi trusts: known_hosts plus the pinned keys.

Only the key exchange runs (asyncssh's ``get_server_host_key``), so a scan needs no credentials and
sends no command. Hosts are scanned concurrently, each bounded by its connect timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncssh

from smallyi.config import SSHSettings
from smallyi.execution.connectors.ssh_keys import (
    HostKeys,
    PinStore,
    host_port,
    host_settings,
    known_hosts_name,
)
from smallyi.inventory.hosts import HostSpec


@dataclass(frozen=True)
class ScannedKey:
    """One host's key as the host presented it, and how it compares with the trusted keys."""

    host: str
    address: str
    port: int
    #: ``known``, ``unknown``, ``changed``, or ``error`` (``problem`` says why)
    status: str
    key_type: str = ""
    fingerprint: str = ""
    #: the known_hosts line to trust it with (``[addr]:port type base64``)
    line: str = ""
    problem: str = ""

    @property
    def pin_host(self) -> str:
        return known_hosts_name(self.address, self.port)


async def scan(hosts: list[HostSpec], ssh: SSHSettings, pins: PinStore | None, *,
               concurrency: int = 100) -> list[ScannedKey]:
    """Each SSH host's presented key, judged; in the order of ``hosts``. Pins are refreshed first."""
    if pins is not None:
        await pins.refresh()
    books: dict[object, HostKeys] = {}
    gate = asyncio.Semaphore(concurrency)

    def judge_with(host: HostSpec) -> HostKeys:
        own = host.ssh.trust
        if own not in books:
            settings = host_settings(ssh, own)
            # judged as strict: a scan reports what is trusted now, it never trusts by itself
            books[own] = HostKeys("strict", settings.known_hosts, pins)
        return books[own]

    async def one(host: HostSpec) -> ScannedKey:
        timeout = host.ssh.connect_timeout if host.ssh.connect_timeout is not None else ssh.connect_timeout
        async with gate:
            try:
                async with asyncio.timeout(timeout):
                    key = await asyncssh.get_server_host_key(host.address, host.port, config=None)
            except TimeoutError:
                return ScannedKey(host.name, host.address, host.port, "error",
                                  problem=f"{host_port(host.address, host.port)}: no answer within {timeout:g}s")
            except (OSError, asyncssh.Error) as exc:
                why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                return ScannedKey(host.name, host.address, host.port, "error",
                                  problem=f"{host_port(host.address, host.port)}: {why}")
        if key is None:
            return ScannedKey(host.name, host.address, host.port, "error", problem="the host presented no key")
        kind, data = key.export_public_key("openssh").decode("ascii").split()[:2]
        book = judge_with(host)
        if book.problem:
            return ScannedKey(host.name, host.address, host.port, "error", kind, key.get_fingerprint(),
                              problem=book.problem)
        return ScannedKey(host.name, host.address, host.port, book.trusted(host.address, host.port, key), kind,
                          key.get_fingerprint(), f"{known_hosts_name(host.address, host.port)} {kind} {data}")

    return list(await asyncio.gather(*(one(h) for h in hosts)))
