"""Two schedulers (two replicas) against one PostgreSQL: every slot fires exactly once, claimed by one of them."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smallyi.config import parse_settings
from smallyi.execution.connectors.fake import FakeConnector
from smallyi.inventory.hosts import HostSpec
from smallyi.runtime import Runtime
from smallyi.schedules.clock import FakeClock
from smallyi.sop import automation
from smallyi.storage.models import ScheduleFire, Task, utcnow
from support import ADMIN_HASH

pytestmark = pytest.mark.postgres


async def replica(pg_url: str, tmp_path: Path, name: str, clock: FakeClock) -> tuple[Runtime, automation.Automation]:
    text = (f"database:\n  driver: postgres\n  source: {pg_url}\nsecrets:\n  key_file: {tmp_path}/master.key\n"
            f'auth:\n  users:\n    - {{username: alice, password_hash: "{ADMIN_HASH}"}}\n')  # the schedules' owner
    rt = await Runtime.open(parse_settings(text, base_dir=tmp_path), kind="cli",
                            connectors={"ssh": FakeConnector()})
    rt.tasks.runner = f"server:{name}:1"
    return rt, automation.build(rt, clock=clock)


async def test_two_schedulers_fire_each_slot_once(pg_url: str, tmp_path: Path) -> None:
    """Ticking both replicas at the same instants over 20 slots gives 20 fires and 20 tasks, none twice."""
    start = utcnow()
    clocks = [FakeClock(start), FakeClock(start)]
    a_rt, a = await replica(pg_url, tmp_path, "a", clocks[0])
    b_rt, b = await replica(pg_url, tmp_path, "b", clocks[1])
    try:
        await a_rt.inventory.upsert([HostSpec("h1", "10.0.0.1")], source="manual")
        sch = await a.schedules.create({"name": "every-minute", "cron": "@every 1m", "kind": "command",
                                        "command": "uptime", "target": {"hosts": ["h1"]}}, by="alice")
        fired: list[int] = []
        for _ in range(20):
            for c in clocks:
                c.advance(60)
            got = await asyncio.gather(a.scheduler.tick(), b.scheduler.tick(), a.scheduler.tick(),
                                       b.scheduler.tick())
            assert sum(len(g) for g in got) == 1, got
            fired += [f for g in got for f in g]
            await asyncio.gather(a.scheduler.drain(), b.scheduler.drain())  # a minute passes: the task ends
        await a.scheduler.drain()
        await b.scheduler.drain()
        async with a_rt.db.session() as s:
            slots = (await s.execute(select(ScheduleFire.slot, ScheduleFire.runner, ScheduleFire.status)
                                     .where(ScheduleFire.schedule_id == sch.id))).all()
            tasks = await s.scalar(select(func.count()).select_from(Task))
        assert len(slots) == 20 and len({slot for slot, _, _ in slots}) == 20
        assert {status for _, _, status in slots} == {"success"}
        assert tasks == 20
        by_runner = Counter(runner for _, runner, _ in slots)
        assert set(by_runner) <= {"server:a:1", "server:b:1"}
    finally:
        for auto, rt in ((a, a_rt), (b, b_rt)):
            await auto.close()
            await rt.close()


async def test_the_database_refuses_a_second_claim(pg_url: str, tmp_path: Path) -> None:
    """Whoever claims a slot first owns it: the second INSERT of (schedule, slot) is refused by the database."""
    clock = FakeClock(utcnow())
    rt, auto = await replica(pg_url, tmp_path, "c", clock)
    try:
        await rt.inventory.upsert([HostSpec("h1", "10.0.0.1")], source="manual")
        sch = await auto.schedules.create({"name": "x", "cron": "@daily", "kind": "command", "command": "true",
                                           "target": {"hosts": ["h1"]}}, by="alice")
        slot = utcnow().replace(microsecond=0)
        first = await auto.scheduler._claim(sch, slot, status="running")
        second = await auto.scheduler._claim(sch, slot, status="running")
        assert first is not None and second is None
    finally:
        await auto.close()
        await rt.close()
