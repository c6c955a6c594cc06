"""The connection pool: reuse, single-flight opening, channel caps, idle and size limits."""

from __future__ import annotations

import asyncio

import pytest

from smallyi.execution.pool import Key, Pool


class Conn:
    def __init__(self) -> None:
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


K1: Key = ("10.0.0.1", 22, "root")
K2: Key = ("10.0.0.2", 22, "root")


def opener(counter: list[Conn], delay: float = 0.0):  # type: ignore[no-untyped-def]
    async def open_conn() -> Conn:
        if delay:
            await asyncio.sleep(delay)
        c = Conn()
        counter.append(c)
        return c

    return open_conn


async def test_reuses_an_idle_connection() -> None:
    """A released connection serves the next acquire for the same key."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=60)
    opened: list[Conn] = []
    lease, fresh = await pool.acquire(K1, opener(opened))
    assert fresh
    pool.release(lease)
    again, fresh2 = await pool.acquire(K1, opener(opened))
    assert again is lease and not fresh2 and len(opened) == 1
    assert pool.stats()["reused"] == 1
    await pool.close()


async def test_concurrent_acquires_open_one_connection() -> None:
    """Acquires racing for a key share the one connection being opened."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=60)
    opened: list[Conn] = []
    leases = await asyncio.gather(*(pool.acquire(K1, opener(opened, 0.01)) for _ in range(5)))
    assert len(opened) == 1
    assert {id(lease.conn) for lease, _ in leases} == {id(opened[0])}
    assert leases[0][0].active == 5
    await pool.close()


async def test_channel_cap_opens_another_connection() -> None:
    """Past max_channels sessions on one connection, another connection is opened."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=60, max_channels=2)
    opened: list[Conn] = []
    for _ in range(3):
        await pool.acquire(K1, opener(opened))
    assert len(opened) == 2 and len(pool) == 2
    await pool.close()


async def test_failed_open_lets_waiters_try_themselves() -> None:
    """If opening fails, the error goes to the opener; waiters open their own."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=60)
    opened: list[Conn] = []

    async def failing() -> Conn:
        await asyncio.sleep(0.01)
        raise OSError("boom")

    first = asyncio.create_task(pool.acquire(K1, failing))
    await asyncio.sleep(0)
    second = asyncio.create_task(pool.acquire(K1, opener(opened)))
    with pytest.raises(OSError):
        await first
    _lease, fresh = await second
    assert fresh and len(opened) == 1
    await pool.close()


async def test_dead_connection_is_not_reused() -> None:
    """A pooled connection found closed is skipped and a new one opened."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=60)
    opened: list[Conn] = []
    lease, _ = await pool.acquire(K1, opener(opened))
    pool.release(lease)
    lease.conn.close()
    assert not pool.has_usable(K1)
    lease2, fresh = await pool.acquire(K1, opener(opened))
    assert fresh and lease2 is not lease
    await pool.close()


async def test_size_cap_closes_least_recently_used_idle() -> None:
    """Over max_size, the least recently used idle connection is closed."""
    pool: Pool[Conn] = Pool(max_size=2, idle_timeout=60)
    opened: list[Conn] = []
    a, _ = await pool.acquire(K1, opener(opened))
    pool.release(a)
    b, _ = await pool.acquire(K2, opener(opened))
    pool.release(b)
    c, _ = await pool.acquire(("10.0.0.3", 22, "root"), opener(opened))
    assert opened[0].closed and not opened[1].closed and len(pool) == 2
    pool.release(c)
    await pool.close()


async def test_busy_connections_are_never_trimmed() -> None:
    """The size cap closes idle connections only; busy ones may exceed it for a while."""
    pool: Pool[Conn] = Pool(max_size=1, idle_timeout=60)
    opened: list[Conn] = []
    a, _ = await pool.acquire(K1, opener(opened))
    b, _ = await pool.acquire(K2, opener(opened))
    assert len(pool) == 2 and not any(c.closed for c in opened)
    pool.release(a)
    assert opened[0].closed and len(pool) == 1
    pool.release(b)
    await pool.close()


async def test_idle_connections_expire() -> None:
    """Connections idle past idle_timeout are closed by the sweeper."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=0.1)
    opened: list[Conn] = []
    lease, _ = await pool.acquire(K1, opener(opened))
    pool.release(lease)
    await asyncio.sleep(0.3)
    assert opened[0].closed and len(pool) == 0
    await pool.close()


async def test_close_closes_everything() -> None:
    """close() closes every pooled connection; a later acquire opens a new one."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=60)
    opened: list[Conn] = []
    await pool.acquire(K1, opener(opened))
    await pool.close()
    assert opened[0].closed and len(pool) == 0
    _lease, fresh = await pool.acquire(K1, opener(opened))
    assert fresh and len(opened) == 2
    await pool.close()


async def test_a_retired_pool_closes_idle_connections_now_and_busy_ones_after_their_session() -> None:
    """After a reload replaced the SSH settings, the old pool keeps nothing: an idle connection closes at
    once, a busy one serves its session to the end and then closes; the idle sweeper stops."""
    pool: Pool[Conn] = Pool(max_size=10, idle_timeout=60)
    opened: list[Conn] = []
    idle, _ = await pool.acquire(K1, opener(opened))
    busy, _ = await pool.acquire(K2, opener(opened))
    pool.release(idle)
    pool.retire()
    assert idle.conn.closed and not busy.conn.closed and len(pool) == 1
    pool.release(busy)
    assert busy.conn.closed and len(pool) == 0 and not pool.has_usable(K2)
    assert pool._sweeper is None
