"""The engine against hostile SSH hosts: each ends with the right status and reason, in time, alone."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from smallyi.config import ExecutionSettings, OutputSettings
from smallyi.execution.engine import Engine, Job
from smallyi.execution.events import Event, HostOutput
from smallyi.inventory.hosts import HostSpec
from smallyi.testing import BINARY_OUTPUT, Behaviour, HostileFleet, HostileHost, Recorder

GRACE = 0.2


def make_engine(hf: HostileFleet, **ssh: Any) -> Engine:
    ssh.setdefault("connect_timeout", 2.0)
    return Engine(hf.ssh_settings(**ssh), ExecutionSettings(kill_grace=GRACE), OutputSettings())


async def run(engine: Engine, hosts: list[HostileHost], command: str = "echo ok", timeout: float = 5.0,
              emit: Any = None) -> tuple[Recorder, float]:
    rec = Recorder()
    specs = [h.spec() for h in hosts]
    t0 = time.perf_counter()

    def both(e: Event) -> None:
        rec(e)
        if emit is not None:
            emit(e)

    await engine.run(Job(hosts=specs, command=command, timeout=timeout, concurrency=len(specs)), both)
    rec.check(specs)
    return rec, time.perf_counter() - t0


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_hanging_command_times_out_others_unaffected(hostile: HostileFleet) -> None:
    """A host that never answers the command ends timeout within timeout + grace; a good one succeeds."""
    hang = await hostile.start(Behaviour.HANG)
    good = await hostile.start(Behaviour.SHELL)
    eng = make_engine(hostile)
    rec, took = await run(eng, [hang, good], timeout=0.5)
    assert (rec.status(hang.name), rec.done[hang.name].reason) == ("timeout", "timed out after 0.5s")
    assert took < 0.5 + GRACE + 0.5
    assert rec.status(good.name) == "success" and rec.lines(good.name) == ["ok"]
    await eng.close()


async def test_silent_host_connect_times_out(hostile: HostileFleet) -> None:
    """A host that accepts TCP but never speaks SSH is unreachable after connect_timeout."""
    silent = await hostile.start(Behaviour.SILENT)
    eng = make_engine(hostile, connect_timeout=0.5)
    rec, took = await run(eng, [silent])
    assert rec.status(silent.name) == "unreachable"
    assert rec.done[silent.name].reason == f"connect to 127.0.0.1:{silent.port} timed out after 0.5s"
    assert took < 1.5
    await eng.close()


async def test_refused_connection(hostile: HostileFleet) -> None:
    """A closed port is unreachable: connection refused."""
    closed = await hostile.start(Behaviour.REFUSE)
    eng = make_engine(hostile)
    rec, _ = await run(eng, [closed])
    assert rec.status(closed.name) == "unreachable"
    assert rec.done[closed.name].reason.endswith("connection refused")
    await eng.close()


async def test_changed_host_key_refused(hostile: HostileFleet) -> None:
    """A host presenting a key other than known_hosts' is refused as a changed host key."""
    liar = await hostile.start(Behaviour.WRONG_HOST_KEY)
    eng = make_engine(hostile)
    rec, _ = await run(eng, [liar])
    reason = rec.done[liar.name].reason
    assert rec.status(liar.name) == "unreachable"
    assert reason.startswith(f"host key mismatch for 127.0.0.1:{liar.port}: host key changed")
    assert liar.commands == []
    await eng.close()


async def test_unknown_host_key_refused_when_strict(hostile: HostileFleet) -> None:
    """Under strict, a host missing from known_hosts is refused as unknown (not a mismatch: nothing was
    compared), the reason naming the file and the way to trust it."""
    stranger = await hostile.start(Behaviour.SHELL, known=False)
    eng = make_engine(hostile)
    rec, _ = await run(eng, [stranger])
    reason = rec.done[stranger.name].reason
    assert rec.status(stranger.name) == "unreachable"
    assert reason.startswith(f"unknown host key for 127.0.0.1:{stranger.port}: not in known_hosts "
                             f"{hostile.known_hosts_path}"), reason
    assert "small-yi hostkeys scan" in reason and "mismatch" not in reason
    await eng.close()


async def test_rejected_client_key(hostile: HostileFleet) -> None:
    """A host refusing our key is unreachable: authentication failed for the user."""
    picky = await hostile.start(Behaviour.REJECT_KEY)
    eng = make_engine(hostile)
    rec, _ = await run(eng, [picky])
    assert rec.status(picky.name) == "unreachable"
    assert rec.done[picky.name].reason.startswith("authentication failed for user tester")
    await eng.close()


async def test_connection_dropped_mid_output(hostile: HostileFleet) -> None:
    """A host dropping the connection mid-output keeps its lines and ends unreachable, outcome unknown."""
    dropper = await hostile.start(Behaviour.DROP)
    eng = make_engine(hostile)
    rec, took = await run(eng, [dropper])
    assert rec.status(dropper.name) == "unreachable"
    assert "lost while the command ran" in rec.done[dropper.name].reason
    assert rec.lines(dropper.name) == ["line 0", "line 1", "line 2"]
    assert took < 2
    assert dropper.commands == ["echo ok"] and dropper.connections == 1  # not resent on a new connection
    await eng.close()


async def test_binary_output_does_not_break_anything(hostile: HostileFleet) -> None:
    """Binary and invalid UTF-8 output arrives as replaced text lines; the host succeeds."""
    binary = await hostile.start(Behaviour.BINARY)
    eng = make_engine(hostile)
    rec, _ = await run(eng, [binary])
    lines = rec.lines(binary.name)
    assert rec.status(binary.name) == "success"
    assert lines[0] == "ok \ufffd\ufffd\ufffd( bad utf-8"
    assert lines[-1] == "last line, no newline \ufffd"
    assert sum(e.size for e in rec.output[binary.name]) == len(BINARY_OUTPUT)
    await eng.close()


async def test_output_never_closed_after_exit(hostile: HostileFleet) -> None:
    """A command that exits but leaves stdout open ends with its status after kill_grace, with a note."""
    daemonizer = await hostile.start(Behaviour.NO_EOF)
    eng = make_engine(hostile)
    rec, took = await run(eng, [daemonizer], timeout=30)
    done = rec.done[daemonizer.name]
    assert (done.status, done.exit_code) == ("success", 0)
    assert "output was still open" in done.reason
    assert rec.lines(daemonizer.name) == ["started a daemon"]
    assert took < GRACE + 1
    await eng.close()


@pytest.mark.parametrize("behaviour", [Behaviour.FLOOD, Behaviour.ENDLESS_LINE])
async def test_100mb_output_in_bounded_memory(hostile: HostileFleet, behaviour: Behaviour) -> None:
    """100 MB of output (lines, or one endless line) passes with memory growth under 50 MB."""
    flood = await hostile.start(behaviour)
    eng = make_engine(hostile)
    base = rss()
    peak = base
    count = 0

    def sample(e: Event) -> None:
        nonlocal peak, count
        if isinstance(e, HostOutput):
            count += 1
            if count % 2000 == 0:
                peak = max(peak, rss())

    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss())
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    rec = Recorder()

    def emit(e: Event) -> None:
        sample(e)
        if not isinstance(e, HostOutput):
            rec(e)

    await eng.run(Job(hosts=[flood.spec()], command="x", timeout=120, concurrency=1), emit)
    done.set()
    await watcher
    assert rec.status(flood.name) == "success"
    assert count == (-(-100 * 1024 * 1024 // 1000) if behaviour == Behaviour.FLOOD else 1)
    assert peak - base < 50 * 1024 * 1024, f"grew {(peak - base) >> 20} MB"
    await eng.close()


async def test_every_kind_of_trouble_in_one_job(hostile: HostileFleet) -> None:
    """A job mixing every hostile host gives each its own status; the good hosts are unaffected."""
    kinds = {
        Behaviour.HANG: "timeout",
        Behaviour.SILENT: "unreachable",
        Behaviour.REFUSE: "unreachable",
        Behaviour.WRONG_HOST_KEY: "unreachable",
        Behaviour.REJECT_KEY: "unreachable",
        Behaviour.DROP: "unreachable",
        Behaviour.BINARY: "success",
        Behaviour.NO_EOF: "success",
    }
    bad = [await hostile.start(k) for k in kinds]
    good = [await hostile.start(Behaviour.SHELL) for _ in range(3)]
    eng = make_engine(hostile, connect_timeout=1.0)
    rec, took = await run(eng, bad + good, command="echo fine", timeout=1.0)
    assert {h.name: rec.status(h.name) for h in bad} == {h.name: kinds[h.behaviour] for h in bad}
    assert all(rec.status(h.name) == "success" and rec.lines(h.name) == ["fine"] for h in good)
    assert took < 1.0 + GRACE + 1
    await eng.close()


async def test_accept_new_adds_unknown_keys_but_refuses_changed(hostile: HostileFleet) -> None:
    """accept-new trusts an unknown host and records its key; a changed key is still refused."""
    stranger = await hostile.start(Behaviour.SHELL, known=False)
    liar = await hostile.start(Behaviour.WRONG_HOST_KEY)
    eng = make_engine(hostile, host_key_policy="accept-new")
    rec, _ = await run(eng, [stranger, liar])
    assert rec.status(stranger.name) == "success"
    assert "host key changed" in rec.done[liar.name].reason
    assert f"[127.0.0.1]:{stranger.port} ssh-ed25519 " in hostile.known_hosts_path.read_text()
    await eng.close()
    strict = make_engine(hostile)  # a new engine reads the file: the stranger is known now
    rec2, _ = await run(strict, [stranger])
    assert rec2.status(stranger.name) == "success"
    await strict.close()


async def test_policy_off_skips_checks_and_warns_once(hostile: HostileFleet,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """host_key_policy off connects whatever the key, logging one warning."""
    liar = await hostile.start(Behaviour.WRONG_HOST_KEY)
    stranger = await hostile.start(Behaviour.SHELL, known=False)
    eng = make_engine(hostile, host_key_policy="off")
    with caplog.at_level(logging.WARNING):
        rec, _ = await run(eng, [liar, stranger])
        await run(eng, [liar, stranger], command="true")
    assert rec.status(liar.name) == rec.status(stranger.name) == "success"
    assert sum("not checked" in r.message for r in caplog.records) == 1
    await eng.close()


async def test_missing_private_key_names_the_path(hostile: HostileFleet, tmp_path: Path) -> None:
    """A configured key file that does not exist fails every SSH host, naming the path, without connecting."""
    good = await hostile.start(Behaviour.SHELL)
    missing = tmp_path / "nope" / "id_ed25519"
    eng = make_engine(hostile, private_key=str(missing))
    rec, _ = await run(eng, [good])
    assert rec.status(good.name) == "unreachable"
    assert rec.done[good.name].reason == f"private key {missing} not found; set ssh.private_key to an existing key file"
    assert good.connections == 0
    await eng.close()


async def test_missing_known_hosts_file_when_strict(hostile: HostileFleet, tmp_path: Path) -> None:
    """Under strict, a known_hosts path that does not exist refuses hosts, saying the file is missing."""
    good = await hostile.start(Behaviour.SHELL)
    eng = make_engine(hostile, known_hosts=str(tmp_path / "absent"))
    rec, _ = await run(eng, [good])
    assert rec.status(good.name) == "unreachable"
    assert "does not exist" in rec.done[good.name].reason
    await eng.close()


async def test_pool_reuses_connections(hostile: HostileFleet) -> None:
    """A second run to the same hosts opens no new connection (counted by the servers)."""
    hosts = [await hostile.start(Behaviour.SHELL) for _ in range(3)]
    eng = make_engine(hostile)
    await run(eng, hosts, command="echo one")
    rec, _ = await run(eng, hosts, command="echo two")
    assert all(rec.lines(h.name) == ["two"] for h in hosts)
    assert [h.connections for h in hosts] == [1, 1, 1]
    assert eng.stats()["connectors"]["ssh"]["reused"] == 3
    await eng.close()


async def test_dropped_pooled_connection_replaced_command_runs_once(hostile: HostileFleet) -> None:
    """A pooled connection the host dropped is replaced before sending; the command runs exactly once."""
    host = await hostile.start(Behaviour.SHELL)
    eng = make_engine(hostile)
    await run(eng, [host], command="echo one")
    host.drop_connections()
    await asyncio.sleep(0.05)
    rec, _ = await run(eng, [host], command="echo two")
    assert rec.status(host.name) == "success" and rec.lines(host.name) == ["two"]
    assert host.connections == 2
    assert host.commands == ["echo one", "echo two"]
    await eng.close()


async def test_pooled_connection_dead_at_send_time_is_replaced_command_runs_once(hostile: HostileFleet) -> None:
    """The host drops the connection just before the next command (the client has not seen it yet): the
    pooled connection is taken, its session fails to open, a new connection runs the command, once."""
    host = await hostile.start(Behaviour.SHELL)
    eng = make_engine(hostile)
    await run(eng, [host], command="echo one")
    host.drop_connections()  # no await in between: the pool still holds it as usable
    rec, _ = await run(eng, [host], command="echo two")
    assert rec.status(host.name) == "success" and rec.lines(host.name) == ["two"]
    ssh = eng.stats()["connectors"]["ssh"]
    assert (ssh["reused"], ssh["opened"]) == (1, 2)  # the dead one was taken, then replaced
    assert host.connections == 2
    assert host.commands == ["echo one", "echo two"]
    await eng.close()


async def test_idle_connections_closed_after_idle_timeout(hostile: HostileFleet) -> None:
    """Pooled connections idle past ssh.pool_idle_timeout are closed; the next run reconnects."""
    host = await hostile.start(Behaviour.SHELL)
    eng = make_engine(hostile, pool_idle_timeout=0.2)
    await run(eng, [host])
    assert eng.stats()["pool_connections"] == 1
    await asyncio.sleep(0.5)
    assert eng.stats()["pool_connections"] == 0
    rec, _ = await run(eng, [host])
    assert rec.status(host.name) == "success" and host.connections == 2
    await eng.close()


async def test_pool_size_cap_closes_least_recently_used(hostile: HostileFleet) -> None:
    """With ssh.pool_max_size 2, a third host's connection pushes out the least recently used idle one."""
    a, b, c = [await hostile.start(Behaviour.SHELL) for _ in range(3)]
    eng = make_engine(hostile, pool_max_size=2)
    await run(eng, [a])
    await run(eng, [b])
    await run(eng, [c])
    assert eng.stats()["pool_connections"] == 2
    await run(eng, [b, c])
    assert (a.connections, b.connections, c.connections) == (1, 1, 1)
    await eng.close()


async def test_no_known_hosts_configured_refuses_when_strict(hostile: HostileFleet) -> None:
    """With no known_hosts file configured, strict refuses every host instead of skipping checks."""
    good = await hostile.start(Behaviour.SHELL)
    eng = make_engine(hostile, known_hosts=None)
    rec, _ = await run(eng, [good])
    assert rec.status(good.name) == "unreachable"
    assert "no ssh.known_hosts file is configured" in rec.done[good.name].reason
    assert good.commands == []
    await eng.close()


async def test_accept_new_without_a_file_trusts_in_memory(hostile: HostileFleet) -> None:
    """accept-new with no known_hosts file accepts new hosts for the engine's lifetime."""
    good = await hostile.start(Behaviour.SHELL, known=False)
    eng = make_engine(hostile, known_hosts=None, host_key_policy="accept-new")
    rec, _ = await run(eng, [good])
    assert rec.status(good.name) == "success"
    await eng.close()


async def test_unresolvable_name_is_unreachable(hostile: HostileFleet) -> None:
    """A host name that does not resolve ends unreachable, saying so."""
    eng = make_engine(hostile, connect_timeout=3.0)
    rec = Recorder()
    h = HostSpec(name="ghost", address="no-such-host.invalid", port=22)
    await eng.run(Job(hosts=[h], command="true", timeout=5, concurrency=1), rec)
    reason = rec.done["ghost"].reason
    assert rec.status("ghost") == "unreachable"
    assert "cannot resolve" in reason or "timed out" in reason  # no DNS at all: the resolver times out
    await eng.close()


async def test_concurrent_jobs_share_one_connection_per_host(hostile: HostileFleet) -> None:
    """Two jobs starting together on the same hosts open one connection per host, not two."""
    hosts = [await hostile.start(Behaviour.SHELL) for _ in range(3)]
    eng = make_engine(hostile)
    (rec1, _), (rec2, _) = await asyncio.gather(run(eng, hosts, "echo a"), run(eng, hosts, "echo b"))
    assert all(rec1.lines(h.name) == ["a"] and rec2.lines(h.name) == ["b"] for h in hosts)
    assert [h.connections for h in hosts] == [1, 1, 1]
    await eng.close()
