"""The scheduler on a real SQLite database and a fake clock: each slot once, missed runs, overlap, SOPs,
and the owner's rights read at every slot (a disabled owner suspends the schedule)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from test_notify import Receiver

from smallyi.approvals.withdraw import Withdrawal
from smallyi.auth.service import AuthService
from smallyi.config import parse_settings
from smallyi.errors import Forbidden, InputError
from smallyi.execution.connectors.fake import FakeConnector, FakeHost
from smallyi.inventory.hosts import HostSpec
from smallyi.runtime import Runtime
from smallyi.schedules.clock import FakeClock
from smallyi.sop import automation
from smallyi.storage.models import AuditRecord, Schedule, ScheduleFire, SopRun, Task, utcnow
from support import ADMIN_HASH

#: alice owns the schedules below; bob is another operator
USERS = {"alice": "role: operator, groups: [web]", "bob": "role: operator"}


def behaviour(host: HostSpec, command: str) -> FakeHost:
    if "forever" in command:
        return FakeHost(stdout=["working"], duration=float("inf"))
    return FakeHost(stdout=[f"{host.name} ran {command}"], exit_code=1 if "fail" in command else 0)


@dataclass
class Env:
    rt: Runtime
    auto: automation.Automation
    clock: FakeClock
    receiver: Receiver

    async def add(self, by_cli: bool = False, **values: Any) -> Any:
        base = {"kind": "command", "command": "uptime", "target": {"hosts": ["h1"]}, "cron": "@every 1m"}
        return await self.auto.schedules.create({**base, **values}, by="cli:ops" if by_cli else "alice")

    async def tick(self, minutes: float = 1) -> list[int]:
        self.clock.advance(minutes * 60)
        fired = await self.auto.scheduler.tick()
        await self.auto.scheduler.drain()
        return fired

    async def fires(self, schedule_id: int) -> list[ScheduleFire]:
        rows, _ = await self.auto.schedules.fires(schedule_id, limit=1000)
        return sorted(rows, key=lambda f: f.slot)

    async def users(self, users: dict[str, str]) -> None:
        """Sync the users table to a config listing ``users`` (as a restart with that config does)."""
        settings = parse_settings(users_yaml(users))
        await AuthService(self.rt.db, settings.auth, roles=self.rt.roles, audit=self.rt.audit,
                          withdraw=Withdrawal(self.rt.db)).sync_config_users()

    async def audit(self, action: str) -> list[AuditRecord]:
        async with self.rt.db.session() as s:
            return list((await s.scalars(select(AuditRecord).where(AuditRecord.action == action))).all())


def users_yaml(users: dict[str, str]) -> str:
    return "auth:\n  users:\n" + "".join(
        f'    - {{username: {n}, password_hash: "{ADMIN_HASH}", {spec}}}\n' for n, spec in users.items())


async def make_env(tmp_path: Path) -> Env:
    receiver = Receiver()
    text = (f"database:\n  source: {tmp_path}/s.db\nsecrets:\n  key_file: {tmp_path}/master.key\n"
            f"notify:\n  retries: 0\n  channels:\n    ops:\n      kind: webhook\n      url: {receiver.url}/hook\n"
            + users_yaml(USERS))
    fake = FakeConnector(behaviour)
    rt = await Runtime.open(parse_settings(text, base_dir=tmp_path), kind="cli", connectors={"ssh": fake})
    await rt.inventory.upsert([HostSpec("h1", "10.0.0.1", groups=("web",))], source="manual")
    clock = FakeClock(utcnow())  # schedules created now count slots from now: one per minute the clock moves
    return Env(rt, automation.build(rt, clock=clock), clock, receiver)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    yield e
    await e.auto.close()
    await e.rt.close()
    e.receiver.close()


async def test_each_slot_fires_once(env: Env) -> None:
    """Minute by minute, each @every 1m slot fires one task; looking again in the same minute fires nothing."""
    sch = await env.add(name="minutely")
    for _ in range(5):
        assert len(await env.tick()) == 1
        assert await env.auto.scheduler.tick() == []
    fires = await env.fires(sch.id)
    assert [f.status for f in fires] == ["success"] * 5
    assert len({f.slot for f in fires}) == 5 and all(f.task_id for f in fires)
    async with env.rt.db.session() as s:
        tasks = (await s.scalars(select(Task))).all()
    assert len(tasks) == 5 and {t.created_by for t in tasks} == {"schedule:" + sch.name}


async def since(env: Env, sch: Any, minutes_ago: int) -> datetime:
    """Make ``sch`` count its slots from a whole ten minutes ``minutes_ago`` or more back; returns that time."""
    t0 = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    t0 -= timedelta(minutes=t0.minute % 10)
    async with env.rt.db.session.begin() as s:
        await s.execute(update(Schedule).where(Schedule.id == sch.id).values(updated_at=t0))
    return t0


async def test_missed_slots_skipped(env: Env) -> None:
    """Slots that passed while no scheduler ran are recorded as missed and not run (skip); the next one runs."""
    sch = await env.add(name="skipper", cron="@every 10m", missed="skip")
    t0 = await since(env, sch, 60)
    env.clock.set(t0 + timedelta(minutes=42))  # slots +10..+40 passed; +40 is two minutes late
    assert await env.auto.scheduler.tick() == []
    fires = await env.fires(sch.id)
    assert [f.status for f in fires] == ["missed"] and "4 slot(s) passed while no scheduler ran" in fires[0].reason
    assert fires[0].slot == t0 + timedelta(minutes=40)
    env.clock.set(t0 + timedelta(minutes=50, seconds=3))
    assert len(await env.auto.scheduler.tick()) == 1
    await env.auto.scheduler.drain()
    assert [f.status for f in await env.fires(sch.id)] == ["missed", "success"]


async def test_missed_slots_run_once(env: Env) -> None:
    """After downtime, run_once runs the latest missed slot once, and then only new slots."""
    sch = await env.add(name="catchup", cron="@every 10m", missed="run_once")
    t0 = await since(env, sch, 60)
    env.clock.set(t0 + timedelta(minutes=42))
    assert len(await env.auto.scheduler.tick()) == 1
    await env.auto.scheduler.drain()
    assert await env.auto.scheduler.tick() == []
    fires = await env.fires(sch.id)
    assert [f.status for f in fires] == ["success"] and "run once" in fires[0].reason
    assert fires[0].slot == t0 + timedelta(minutes=40)


async def test_no_overlap_skips_while_the_previous_run_goes_on(env: Env) -> None:
    """With overlap skip, a slot that comes while the last task still runs is recorded as skipped."""
    sch = await env.add(name="long", command="forever")
    env.clock.advance(60)
    assert len(await env.auto.scheduler.tick()) == 1
    env.clock.advance(60)
    assert len(await env.auto.scheduler.tick()) == 1
    fires = await env.fires(sch.id)
    assert [f.status for f in fires] == ["running", "skipped"] and "still going" in fires[1].reason


async def test_overlap_allowed(env: Env) -> None:
    """With overlap allow, slots start new tasks while earlier ones run."""
    sch = await env.add(name="parallel", command="forever", overlap="allow")
    for _ in range(3):
        env.clock.advance(60)
        await env.auto.scheduler.tick()
    assert [f.status for f in await env.fires(sch.id)] == ["running"] * 3


async def test_failure_notifies(env: Env) -> None:
    """A schedule's failed run is told to its channels; a success is not (on: failure)."""
    await env.add(name="flaky", command="fail", notify={"channels": ["ops"], "on": ["failure"]})
    await env.add(name="fine", notify={"channels": ["ops"], "on": ["failure"]})
    await env.tick()
    await env.auto.notify.drain()
    assert len(env.receiver.seen) == 1
    doc = env.receiver.seen[0].json()
    assert doc["event"] == "schedule" and doc["status"] == "failure" and "flaky" in doc["title"]


async def test_sop_schedule_runs_the_stored_sop(env: Env) -> None:
    """A sop schedule starts a run of the stored SOP as schedule:<name>; the fire records the run and its end."""
    await env.auto.sop.store.save("hello", "steps:\n  - {id: a, type: exec, cmd: echo hi, target: {hosts: [h1]}}\n",
                                  by="alice")
    sch = await env.add(name="nightly", kind="sop", sop_name="hello", target={})
    await env.tick()
    fire = (await env.fires(sch.id))[0]
    run = await env.auto.sop.records.run(fire.run_id or 0)
    assert fire.status == "success" and run.status == "success"
    assert run.started_by == "schedule:nightly" and run.trigger == "schedule" and run.schedule_id == sch.id


async def test_paused_schedules_do_not_fire_and_resume_from_now(env: Env) -> None:
    """A paused schedule fires nothing; resumed, slots from before are not made up."""
    sch = await env.add(name="paused", enabled=False)
    await env.tick(5)
    assert await env.fires(sch.id) == []
    await env.auto.schedules.update("paused", {"enabled": True}, by="alice")
    env.clock.set(utcnow() + timedelta(seconds=61))
    assert len(await env.auto.scheduler.tick()) == 1


async def test_the_loop_runs_on_the_clock(env: Env) -> None:
    """The scheduler's own loop sleeps on the clock and fires when it moves."""
    import asyncio

    sch = await env.add(name="looped")
    loop = asyncio.create_task(env.auto.scheduler.run())
    try:
        for _ in range(3):
            await asyncio.sleep(0.2)
            env.clock.advance(60)
        for _ in range(50):
            if len(await env.fires(sch.id)) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(await env.fires(sch.id)) == 3
    finally:
        loop.cancel()


async def test_bad_schedules_are_refused_with_the_field(env: Env) -> None:
    """Bad cron, time zone, kind or missing parts are refused naming the field; nothing is stored."""
    cases = [({"cron": "61 * * * *"}, "cron"), ({"timezone": "Nowhere/City"}, "timezone"),
             ({"kind": "job"}, "kind"), ({"command": " "}, "command"), ({"target": {}}, "target"),
             ({"kind": "sop", "sop_name": ""}, "sop_name"), ({"missed": "never"}, "missed"),
             ({"notify": {"on": ["always"]}}, "notify.on")]
    for values, field in cases:
        with pytest.raises(InputError) as e:
            await env.add(name="bad", **values)
        assert e.value.field == field, values
    assert await env.auto.schedules.all() == []


async def test_each_fire_uses_the_owners_rights_at_that_slot(env: Env) -> None:
    """A schedule runs with its owner's rights as they are at the slot, never those stored when it was made:
    alice (operator of web) loses web and the next slot is refused, naming the host; given web back, it runs."""
    sch = await env.add(name="web-check")
    assert len(await env.tick()) == 1
    await env.users({**USERS, "alice": "role: operator, groups: [db]"})
    await env.tick()
    await env.users(USERS)
    await env.tick()
    fires = await env.fires(sch.id)
    assert [f.status for f in fires] == ["success", "error", "success"]
    assert "alice" in fires[1].reason and "h1" in fires[1].reason and fires[1].task_id is None


async def test_an_owner_removed_from_the_config_suspends_the_schedule(env: Env) -> None:
    """With alice gone from the config her schedule runs nothing: each slot is recorded as suspended, naming
    her; the audit trail and the channels hear of it once, not at every slot. Back in the config, it runs
    again with her rights then, and that is audited too."""
    sch = await env.add(name="beat", notify={"channels": ["ops"], "on": ["failure"]})
    assert len(await env.tick()) == 1
    await env.users({"bob": USERS["bob"]})
    for _ in range(3):
        await env.tick()
    fires = await env.fires(sch.id)
    assert [f.status for f in fires] == ["success"] + ["suspended"] * 3
    assert "owner 'alice'" in fires[1].reason and all(f.task_id is None for f in fires[1:])
    async with env.rt.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Task)) == 1
    suspended = await env.audit("schedule.suspended")
    assert len(suspended) == 1 and suspended[0].actor == "schedule:beat"
    await env.auto.notify.drain()
    assert len(env.receiver.seen) == 1 and "alice" in env.receiver.seen[0].body.decode()
    await env.users(USERS)
    await env.tick()
    assert (await env.fires(sch.id))[-1].status == "success"
    assert len(await env.audit("schedule.reinstated")) == 1


async def test_a_sop_schedule_runs_with_the_owners_role_and_groups_now(env: Env) -> None:
    """A SOP schedule's run carries its owner's current role and groups: alice, moved from web to db
    since she made it, gets a run that may not touch h1 (in web)."""
    await env.auto.sop.store.save("hello", "steps:\n  - {id: a, type: exec, cmd: echo hi, target: {hosts: [h1]}}\n",
                                  by="alice")
    sch = await env.add(name="nightly", kind="sop", sop_name="hello", target={})
    await env.users({**USERS, "alice": "role: operator, groups: [db]"})
    await env.tick()
    fire = (await env.fires(sch.id))[0]
    async with env.rt.db.session() as s:
        run = await s.get(SopRun, fire.run_id or 0)
    assert run is not None and (run.role, run.groups) == ("operator", ["db"])
    assert fire.status == "failed" and "h1" in fire.reason


async def test_a_schedule_from_the_local_cli_keeps_full_rights(env: Env) -> None:
    """The local CLI has no account (it holds the config and the database): its schedules run as it does."""
    sch = await env.add(name="from-cli", by_cli=True)
    await env.tick()
    assert [f.status for f in await env.fires(sch.id)] == ["success"]


async def test_the_owner_cannot_approve_and_her_pending_approvals_end_with_her(env: Env) -> None:
    """A SOP schedule's approval step waits: its owner may not approve it (she stands behind the run); once
    she is removed from the config the approval is cancelled, naming her, and the run fails."""
    import asyncio

    await env.auto.sop.store.save("gated", "steps:\n  - {id: gate, type: approval}\n"
                                  "  - {id: act, type: exec, cmd: echo go, target: {hosts: [h1]}}\n", by="alice")
    sch = await env.add(name="gated", kind="sop", sop_name="gated", target={})
    env.clock.advance(60)
    assert len(await env.auto.scheduler.tick()) == 1
    run_id = (await env.fires(sch.id))[0].run_id or 0
    for _ in range(100):
        if (await env.auto.sop.records.steps(run_id))[0].status == "waiting":
            break
        await asyncio.sleep(0.05)
    with pytest.raises(Forbidden, match="stand behind"):
        await env.auto.sop.decide(run_id, "gate", by="alice", approve=True)
    await env.users({"bob": USERS["bob"]})
    status, reason = await asyncio.wait_for(env.auto.sop.wait(run_id), 10)
    assert status == "failed" and "cancelled" in reason and "alice" in reason
    await env.auto.scheduler.drain()
