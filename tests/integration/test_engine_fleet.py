"""The engine on the real OpenSSH fleet: output, statuses, timeout, cancel, pool, limits, log follow."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from smallyi.config import ExecutionSettings, OutputSettings
from smallyi.execution import follow
from smallyi.execution.engine import Engine, Job
from smallyi.inventory.hosts import HostSpec
from smallyi.testing import Fleet, Recorder

pytestmark = pytest.mark.fleet

GRACE = 0.5


def make_engine(fleet: Fleet, **execution: Any) -> Engine:
    execution.setdefault("kill_grace", GRACE)
    return Engine(fleet.ssh_settings(), ExecutionSettings(**execution), OutputSettings())


@pytest.fixture
async def engine(fleet: Fleet) -> AsyncIterator[Engine]:
    eng = make_engine(fleet)
    yield eng
    await eng.close()


async def run(engine: Engine, hosts: list[HostSpec], command: str, *, timeout: float = 10.0,
              concurrency: int = 0, rate: float = 0.0, cancel_after: float | None = None) -> tuple[Recorder, float]:
    rec = Recorder()
    job = Job(hosts=hosts, command=command, timeout=timeout, concurrency=concurrency or len(hosts), rate=rate)
    if cancel_after is not None:
        asyncio.get_running_loop().call_later(cancel_after, job.cancel.set)
    t0 = time.perf_counter()
    await engine.run(job, rec)
    rec.check(hosts)
    return rec, time.perf_counter() - t0


@pytest.mark.parametrize("command", ["echo hello", "uptime", "hostname"])
async def test_simple_commands_on_every_host(engine: Engine, fleet: Fleet, command: str) -> None:
    """echo / uptime / hostname succeed on all fleet hosts, one output line each."""
    hosts = fleet.specs()
    rec, _ = await run(engine, hosts, command)
    for h in hosts:
        assert rec.status(h.name) == "success", rec.done[h.name].reason
        lines = rec.lines(h.name)
        assert len(lines) == 1 and lines[0]
    if command == "echo hello":
        assert all(rec.lines(h.name) == ["hello"] for h in hosts)
    if command == "uptime":
        assert all("load average" in rec.lines(h.name)[0] for h in hosts)


async def test_stdout_and_stderr_lines_per_host(engine: Engine, fleet: Fleet) -> None:
    """Each host's stdout and stderr arrive as separate streams of lines, per host."""
    hosts = fleet.specs()
    rec, _ = await run(engine, hosts, "printf 'a\\nb\\r\\nc'; echo $SSH_CONNECTION >&2")
    for h in hosts:
        assert rec.lines(h.name) == ["a", "b", "c"]
        (err,) = rec.lines(h.name, "stderr")
        assert err.split()[2] == h.address


async def test_commands_get_no_input(engine: Engine, fleet: Fleet) -> None:
    """stdin is closed at once: a command reading it (cat) ends instead of waiting for input."""
    hosts = fleet.specs(5)
    rec, took = await run(engine, hosts, "cat; echo done", timeout=3)
    assert all(rec.status(h.name) == "success" and rec.lines(h.name) == ["done"] for h in hosts)
    assert took < 2


async def test_nonzero_exit_is_failed(engine: Engine, fleet: Fleet) -> None:
    """A non-zero exit status makes the host failed, with the code and "exit status N"."""
    hosts = fleet.specs(5)
    rec, _ = await run(engine, hosts, "echo partial; exit 3")
    for h in hosts:
        done = rec.done[h.name]
        assert (done.status, done.exit_code, done.reason) == ("failed", 3, "exit status 3")
        assert rec.lines(h.name) == ["partial"]


async def test_timeout_keeps_partial_output(engine: Engine, fleet: Fleet) -> None:
    """A command past its timeout ends timeout, quickly, with the output it printed before."""
    hosts = fleet.specs()
    rec, took = await run(engine, hosts, "echo before; sleep 5; echo after", timeout=0.5)
    for h in hosts:
        assert (rec.status(h.name), rec.done[h.name].reason) == ("timeout", "timed out after 0.5s")
        assert rec.lines(h.name) == ["before"]
    assert took < 0.5 + GRACE + 2


async def test_cancel_mid_run(engine: Engine, fleet: Fleet) -> None:
    """Cancelling a job stops running commands and cancels hosts not yet started."""
    hosts = fleet.specs()
    rec, took = await run(engine, hosts, "echo started; sleep 10", timeout=0, concurrency=5,
                          cancel_after=1.0)
    assert {rec.status(h.name) for h in hosts} == {"cancelled"}
    reasons = [rec.done[h.name].reason for h in hosts]
    assert reasons.count("cancelled") == 5
    assert reasons.count("cancelled before start") == len(hosts) - 5
    assert all(rec.lines(h.name) == ["started"] for h in hosts if rec.done[h.name].reason == "cancelled")
    assert took < 1.0 + GRACE + 2


async def test_second_run_opens_no_connection(fleet: Fleet) -> None:
    """A second run to the same hosts reuses the pooled connections: none opened."""
    eng = make_engine(fleet)
    hosts = fleet.specs()
    await run(eng, hosts, "true")
    opened = eng.stats()["connectors"]["ssh"]["opened"]
    assert opened == len(hosts)
    rec, _ = await run(eng, hosts, "echo again")
    assert all(rec.status(h.name) == "success" for h in hosts)
    ssh_stats = eng.stats()["connectors"]["ssh"]
    assert ssh_stats["opened"] == opened and ssh_stats["reused"] == len(hosts)
    await eng.close()


async def test_concurrency_limit_by_timing(fleet: Fleet) -> None:
    """With concurrency 5, 20 commands of 0.3 s run in 4 waves, never more than 5 at once."""
    eng = make_engine(fleet)
    hosts = fleet.specs(20)
    await run(eng, hosts, "true")  # warm the pool: waves then measure commands, not handshakes
    before = eng.stats()["peak_sessions"]
    rec, took = await run(eng, hosts, "sleep 0.3", concurrency=5)
    assert all(rec.status(h.name) == "success" for h in hosts)
    assert 1.2 <= took < 3.0
    assert before == 20  # the warm-up ran all at once
    starts = sorted(rec.started[h.name].at for h in hosts)
    ends = sorted(rec.done[h.name].finished for h in hosts)
    assert max(sum(1 for s in starts if s <= t) - sum(1 for e in ends if e < t) for t in starts) <= 5
    await eng.close()


async def test_global_cap_limits_sessions(fleet: Fleet) -> None:
    """execution.max_concurrency caps sessions even when the job allows more."""
    eng = make_engine(fleet, max_concurrency=4)
    hosts = fleet.specs(12)
    rec, took = await run(eng, hosts, "sleep 0.2", concurrency=12)
    assert all(rec.status(h.name) == "success" for h in hosts)
    assert eng.stats()["peak_sessions"] == 4 and took >= 0.6
    await eng.close()


async def test_rate_limit_on_new_connections(fleet: Fleet) -> None:
    """rate 20/s spreads 20 new connections over about a second; the pooled rerun is not slowed."""
    eng = make_engine(fleet)
    hosts = fleet.specs(20)
    _, cold = await run(eng, hosts, "true", rate=20)
    _, warm = await run(eng, hosts, "true", rate=20)
    assert cold >= 0.95
    assert warm < 0.9
    await eng.close()


@pytest.fixture
def log_file() -> Iterator[Path]:
    path = Path("/tmp") / f"small-yi-follow-{uuid.uuid4().hex}.log"
    path.write_text("keep 0\ndrop 0\n")
    path.chmod(0o644)
    yield path
    path.unlink(missing_ok=True)


async def wait_for(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


async def test_follow_grep_and_rejoin(fleet: Fleet, log_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """logs follow: matching lines arrive from every host; a killed tail is reported and rejoined."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.2)
    eng = make_engine(fleet)
    hosts = fleet.specs(3)
    rec = Recorder()
    job = Job(hosts=hosts, command="", timeout=0, concurrency=0)
    task = asyncio.create_task(eng.follow(job, rec, files=[str(log_file)], lines=5, grep=r"^keep"))
    await wait_for(lambda: all(rec.lines(h.name) == ["keep 0"] for h in hosts))
    append(log_file, "keep 1\ndrop 1\nkeep 2\n")
    await wait_for(lambda: all(rec.lines(h.name) == ["keep 0", "keep 1", "keep 2"] for h in hosts))
    # the tails die on the hosts (log rotation gone wrong, OOM killer, ...): each host rejoins
    subprocess.run(["pkill", "-f", f"tail -n .* -F -- {log_file}"], check=False)
    await wait_for(lambda: all("[small-yi] rejoined" in rec.lines(h.name, "stderr") for h in hosts))
    # "rejoined" is said when the new session starts; `tail -n 0` reaches the file's end a moment
    # later, and lines written in between are not replayed (documented). So write a line every
    # 0.3 s until every host has one again: each must then have an unbroken run up to the last.
    written: list[str] = []

    def every_host_caught_up() -> bool:
        return bool(written) and all(rec.lines(h.name)[-1] == written[-1] for h in hosts)

    deadline = time.monotonic() + 10
    while not every_host_caught_up():
        assert time.monotonic() < deadline, f"not every host had a line after the rejoin: {written}"
        written.append(f"keep {3 + len(written)}")
        append(log_file, f"{written[-1]}\ndrop\n")
        await asyncio.sleep(0.3)
    job.cancel.set()
    await asyncio.wait_for(task, 5)
    rec.check(hosts)
    for h in hosts:
        lines = rec.lines(h.name)
        assert lines[:3] == ["keep 0", "keep 1", "keep 2"]
        after = lines[3:]
        assert after and after == written[len(written) - len(after):], (after, written)
        assert any(n.startswith("[small-yi] tail ended") for n in rec.lines(h.name, "stderr"))
        assert rec.status(h.name) == "cancelled"
    await eng.close()


async def test_fleet_run_is_repeatable_many_rounds(fleet: Fleet) -> None:
    """Five rounds over the pool all succeed and keep the connection count at the host count."""
    eng = make_engine(fleet)
    hosts = fleet.specs()
    for _ in range(5):
        rec, _ = await run(eng, hosts, "echo $SSH_CONNECTION")
        assert all(rec.status(h.name) == "success" for h in hosts)
    assert eng.stats()["pool_connections"] == len(hosts)
    await eng.close()
