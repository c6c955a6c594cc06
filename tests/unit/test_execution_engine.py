"""The engine's contract, driven through the fake connector: events, statuses, limits, cancel, pool."""

from __future__ import annotations

import asyncio
import time

import pytest

from smallyi.config import ExecutionSettings, OutputSettings, SSHSettings
from smallyi.errors import HostUnreachable
from smallyi.execution.connectors.base import Connector, Exit, RunContext
from smallyi.execution.connectors.fake import FakeConnector, FakeHost
from smallyi.execution.engine import Engine, Job
from smallyi.execution.events import Event, HostOutput
from smallyi.inventory.hosts import HostSpec
from smallyi.testing import Recorder
from smallyi.types import HostStatus

INF = float("inf")


def hosts(n: int, prefix: str = "h") -> list[HostSpec]:
    return [HostSpec(name=f"{prefix}{i:03d}", address=f"10.0.{i // 250}.{i % 250 + 1}") for i in range(n)]


def engine(fake: Connector, *, max_concurrency: int = 500, connect_timeout: float = 5.0,
           kill_grace: float = 0.1) -> Engine:
    return Engine(
        SSHSettings(connect_timeout=connect_timeout),
        ExecutionSettings(max_concurrency=max_concurrency, kill_grace=kill_grace),
        OutputSettings(max_line_bytes=100),
        connectors={"ssh": fake},
    )


async def test_every_host_one_start_output_one_done() -> None:
    """Each host gets one HostStarted, its lines, then one HostDone; success on exit 0."""
    fake = FakeConnector()
    hs = hosts(50)
    rec = Recorder()
    await engine(fake).run(Job(hosts=hs, command="uptime", timeout=5, concurrency=10), rec)
    rec.check(hs)
    assert all(rec.status(h.name) == "success" for h in hs)
    assert rec.lines("h007") == ["h007: uptime"]
    assert rec.done["h007"].exit_code == 0 and rec.done["h007"].reason == ""


async def test_statuses_and_reasons() -> None:
    """Exit codes, signals and connect failures map to failed / unreachable with plain reasons."""
    fake = FakeConnector({
        "h000": FakeHost(exit_code=2),
        "h001": FakeHost(signal="KILL"),
        "h002": FakeHost(unreachable="connection refused"),
        "h003": FakeHost(stdout=["out"], stderr=["err"]),
    })
    hs = hosts(4)
    rec = Recorder()
    await engine(fake).run(Job(hosts=hs, command="x", timeout=5, concurrency=4), rec)
    rec.check(hs)
    assert (rec.status("h000"), rec.done["h000"].reason, rec.done["h000"].exit_code) == ("failed", "exit status 2", 2)
    assert (rec.status("h001"), rec.done["h001"].reason) == ("failed", "killed by signal KILL")
    assert (rec.status("h002"), rec.done["h002"].reason) == ("unreachable", "connection refused")
    assert rec.lines("h003") == ["out"] and rec.lines("h003", "stderr") == ["err"]


async def test_per_job_concurrency_is_respected() -> None:
    """No more than job.concurrency hosts run at once."""
    fake = FakeConnector(lambda h, c: FakeHost(duration=0.02))
    rec = Recorder()
    await engine(fake).run(Job(hosts=hosts(40), command="x", timeout=5, concurrency=7), rec)
    assert fake.max_active == 7


async def test_global_cap_spans_jobs() -> None:
    """Two jobs together never exceed execution.max_concurrency sessions; free_slots shows it."""
    fake = FakeConnector(lambda h, c: FakeHost(duration=0.05))
    eng = engine(fake, max_concurrency=6)
    seen: list[int] = []

    def emit(e: Event) -> None:
        seen.append(eng.free_slots)

    await asyncio.gather(
        eng.run(Job(hosts=hosts(20, "a"), command="x", timeout=5, concurrency=5), emit),
        eng.run(Job(hosts=hosts(20, "b"), command="x", timeout=5, concurrency=5), emit),
    )
    assert fake.max_active == 6
    assert min(seen) == 0 and eng.free_slots == 6
    assert eng.stats()["peak_sessions"] == 6


async def test_rate_limits_new_connections_not_reuse() -> None:
    """rate caps new connections per second; a second run over pooled connections is not slowed."""
    fake = FakeConnector()
    eng = engine(fake)
    hs = hosts(11)
    t0 = time.perf_counter()
    await eng.run(Job(hosts=hs, command="x", timeout=5, concurrency=11, rate=50), Recorder())
    cold = time.perf_counter() - t0
    t1 = time.perf_counter()
    await eng.run(Job(hosts=hs, command="x", timeout=5, concurrency=11, rate=50), Recorder())
    warm = time.perf_counter() - t1
    assert cold >= 0.19  # 10 intervals of 20 ms after the first
    assert warm < 0.05 and fake.connects == 11


async def test_command_timeout_keeps_partial_output() -> None:
    """A command running past timeout ends timeout, its output so far kept, and it is stopped."""
    fake = FakeConnector({"h000": FakeHost(stdout=["before"], duration=INF)})
    rec = Recorder()
    t0 = time.perf_counter()
    await engine(fake).run(Job(hosts=hosts(2), command="x", timeout=0.2, concurrency=2), rec)
    assert time.perf_counter() - t0 < 1
    assert (rec.status("h000"), rec.done["h000"].reason) == ("timeout", "timed out after 0.2s")
    assert rec.lines("h000") == ["before"] and fake.stopped == ["h000"]
    assert rec.status("h001") == "success"


async def test_connect_timeout_is_unreachable() -> None:
    """A host that does not answer within ssh.connect_timeout is unreachable, saying so."""
    fake = FakeConnector({"h000": FakeHost(connect_delay=10)})
    rec = Recorder()
    await engine(fake, connect_timeout=0.1).run(Job(hosts=hosts(2), command="x", timeout=60, concurrency=2), rec)
    assert rec.status("h000") == "unreachable"
    assert rec.done["h000"].reason == "connect to 10.0.0.1:22 timed out after 0.1s"
    assert rec.status("h001") == "success"


async def test_connect_time_does_not_count_against_command_timeout() -> None:
    """The command timeout starts when the command is sent, not when connecting starts."""
    fake = FakeConnector({"h000": FakeHost(connect_delay=0.2, duration=0.1)})
    rec = Recorder()
    await engine(fake).run(Job(hosts=hosts(1), command="x", timeout=0.25, concurrency=1), rec)
    assert rec.status("h000") == "success"


async def test_cancel_mid_run() -> None:
    """Setting job.cancel stops running hosts and cancels the ones not started, promptly."""
    fake = FakeConnector(lambda h, c: FakeHost(stdout=["hi"], duration=INF))
    hs = hosts(30)
    job = Job(hosts=hs, command="x", timeout=0, concurrency=5)
    rec = Recorder()
    asyncio.get_running_loop().call_later(0.05, job.cancel.set)
    t0 = time.perf_counter()
    await engine(fake).run(job, rec)
    assert time.perf_counter() - t0 < 1
    rec.check(hs)
    assert {rec.status(h.name) for h in hs} == {"cancelled"}
    reasons = [rec.done[h.name].reason for h in hs]
    assert reasons.count("cancelled") == 5 and reasons.count("cancelled before start") == 25
    assert sorted(fake.stopped) == sorted(h.name for h in hs[:5])


async def test_cancel_before_run() -> None:
    """A job cancelled before it starts runs nothing; every host still gets its two events."""
    fake = FakeConnector()
    hs = hosts(10)
    job = Job(hosts=hs, command="x", timeout=0, concurrency=3)
    job.cancel.set()
    rec = Recorder()
    await engine(fake).run(job, rec)
    rec.check(hs)
    assert {rec.status(h.name) for h in hs} == {"cancelled"} and fake.commands == []


async def test_cancelling_the_run_task_still_finishes_every_host() -> None:
    """Cancelling engine.run itself gives every host a HostDone, then raises CancelledError."""
    fake = FakeConnector(lambda h, c: FakeHost(duration=INF))
    hs = hosts(12)
    rec = Recorder()
    task = asyncio.create_task(engine(fake).run(Job(hosts=hs, command="x", timeout=0, concurrency=4), rec))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rec.check(hs)
    assert {rec.status(h.name) for h in hs} == {"cancelled"}


async def test_failing_emit_fails_only_that_host() -> None:
    """If emit raises on a host's output, that host ends failed; the others are unaffected."""
    fake = FakeConnector()
    rec = Recorder()

    def emit(e: Event) -> None:
        if isinstance(e, HostOutput) and e.host == "h001":
            raise RuntimeError("consumer broke")
        rec(e)

    hs = hosts(3)
    await engine(fake).run(Job(hosts=hs, command="x", timeout=5, concurrency=3), emit)
    rec.check(hs)
    assert rec.status("h001") == "failed" and "consumer broke" in rec.done["h001"].reason
    assert rec.status("h000") == rec.status("h002") == "success"


class Exploding(Connector):
    async def run(self, ctx: RunContext) -> Exit:
        raise KeyError("bug")


async def test_connector_bug_becomes_a_reason() -> None:
    """An unexpected exception in a connector becomes HostDone failed, never escapes run()."""
    rec = Recorder()
    hs = hosts(2)
    await engine(Exploding()).run(Job(hosts=hs, command="x", timeout=5, concurrency=2), rec)
    rec.check(hs)
    assert rec.status("h000") == "failed" and rec.done["h000"].reason.startswith("internal error")


async def test_unknown_connector_is_unreachable() -> None:
    """A host naming a connector the engine lacks ends unreachable."""
    rec = Recorder()
    h = HostSpec(name="odd", address="x", connector="carrier-pigeon")
    await engine(FakeConnector()).run(Job(hosts=[h], command="x", timeout=5, concurrency=1), rec)
    assert rec.status("odd") == "unreachable" and "carrier-pigeon" in rec.done["odd"].reason


async def test_second_run_reuses_pooled_connections() -> None:
    """A second run on the same hosts opens no new connection."""
    fake = FakeConnector()
    eng = engine(fake)
    hs = hosts(20)
    await eng.run(Job(hosts=hs, command="a", timeout=5, concurrency=20), Recorder())
    await eng.run(Job(hosts=hs, command="b", timeout=5, concurrency=20), Recorder())
    assert fake.connects == 20
    assert eng.stats()["pool_connections"] == 20
    await eng.close()
    assert eng.stats()["pool_connections"] == 0


async def test_dead_pooled_connection_replaced_command_sent_once() -> None:
    """Pooled connections found dead are replaced before sending; each command runs exactly once."""
    fake = FakeConnector()
    eng = engine(fake)
    hs = hosts(5)
    await eng.run(Job(hosts=hs, command="a", timeout=5, concurrency=5), Recorder())
    fake.drop_connections()
    rec = Recorder()
    await eng.run(Job(hosts=hs, command="b", timeout=5, concurrency=5), rec)
    assert {rec.status(h.name) for h in hs} == {"success"}
    assert fake.connects == 10
    assert sorted(c for _, c in fake.commands) == ["a"] * 5 + ["b"] * 5


async def test_empty_job_returns_at_once() -> None:
    """A job with no hosts emits nothing."""
    rec = Recorder()
    await engine(FakeConnector()).run(Job(hosts=[], command="x", timeout=5, concurrency=1), rec)
    assert rec.events == []


async def test_zero_concurrency_means_default() -> None:
    """concurrency 0 takes execution.default_concurrency."""
    fake = FakeConnector(lambda h, c: FakeHost(duration=0.01))
    eng = Engine(SSHSettings(), ExecutionSettings(default_concurrency=3), OutputSettings(),
                 connectors={"ssh": fake})
    await eng.run(Job(hosts=hosts(10), command="x", timeout=5, concurrency=0), Recorder())
    assert fake.max_active == 3


async def test_long_lines_cut_per_output_settings() -> None:
    """Lines longer than output.max_line_bytes arrive cut to it, marked with the bytes cut."""
    fake = FakeConnector({"h000": FakeHost(stdout=["x" * 500])})
    rec = Recorder()
    await engine(fake).run(Job(hosts=hosts(1), command="x", timeout=5, concurrency=1), rec)
    (ev,) = rec.output["h000"]
    assert ev.truncated and ev.cut == 400 and ev.size == 501
    assert ev.text == "x" * 100 + " ... [400 bytes cut from this line]"


async def test_unreachable_errors_keep_their_message() -> None:
    """HostUnreachable raised by a connector becomes the reason word for word."""

    class Refusing(Connector):
        async def run(self, ctx: RunContext) -> Exit:
            raise HostUnreachable("authentication failed for user fleet")

    rec = Recorder()
    await engine(Refusing()).run(Job(hosts=hosts(1), command="x", timeout=5, concurrency=1), rec)
    assert rec.done["h000"].status == HostStatus.UNREACHABLE
    assert rec.done["h000"].reason == "authentication failed for user fleet"


async def test_emit_failing_on_the_last_partial_line_still_gives_host_done() -> None:
    """Even if emit fails on the flushed last line, the host gets its HostDone."""
    fake = FakeConnector({"h000": FakeHost(stdout=[b"no newline at the end"])})
    rec = Recorder()

    def emit(e: Event) -> None:
        if isinstance(e, HostOutput):
            raise RuntimeError("consumer broke")
        rec(e)

    await engine(fake).run(Job(hosts=hosts(1), command="x", timeout=5, concurrency=1), emit)
    rec.check(["h000"])
    assert rec.status("h000") == "failed" and "consumer broke" in rec.done["h000"].reason


async def test_engine_overhead_is_linear_in_hosts() -> None:
    """Ten times the hosts (run, then cancelled before start) costs about ten times the CPU, not a hundred.

    CPU time of this process, not wall time, and a ratio, not a bound: other work on a shared
    machine moves neither much, while anything O(n²) over hosts would show as ~100x.
    """
    fake = FakeConnector()
    eng = engine(fake, max_concurrency=1000)
    count = 0

    def emit(e: Event) -> None:
        nonlocal count
        count += 1

    async def cost(n: int) -> float:
        hs = hosts(n)
        t0 = time.process_time()
        await eng.run(Job(hosts=hs, command="x", timeout=5, concurrency=500), emit)
        cancelled = Job(hosts=hs, command="x", timeout=5, concurrency=500)
        cancelled.cancel.set()
        await eng.run(cancelled, emit)
        return time.process_time() - t0

    await cost(500)  # warm-up: first-use costs are not per host
    small = min([await cost(2_000) for _ in range(2)])
    big = await cost(20_000)
    assert count == (500 + 2 * 2_000 + 20_000) * 5
    assert big < 30 * small, f"20,000 hosts cost {big:.2f} CPU-s, 2,000 cost {small:.2f}: not linear"
    await eng.close()
