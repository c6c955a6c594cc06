"""`small-yi logs` when the SSH connection itself goes, not just `tail`: dropped, refused, black-holed.

A network blip or a reboot kills the TCP connection under a running follow, and the pooled connection
dies with it. The follower must say why on that host's stderr (``[small-yi] <why>; rejoining in
<n>s``), open a new connection (the pool must not hand the dead one back), back off while the host
stays down (no tight loop), keep every other host's lines flowing, say ``[small-yi] rejoined`` when
the host is back, and stop at once on Ctrl-C.

The hosts are asyncssh servers on 127.0.0.1 built from smallyi.testing's pieces (HostileFleet's keys
and known_hosts, HostileHost's connection counting and ``drop_connections``); whatever they are asked
to run, they stream a numbered line every 50 ms, so "lines keep flowing" is measurable without files.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from smallyi.config import ExecutionSettings, OutputSettings
from smallyi.execution import follow
from smallyi.execution.connectors import ssh as ssh_connector
from smallyi.execution.engine import Engine, Job
from smallyi.execution.events import Event, HostOutput
from smallyi.inventory.hosts import HostSpec, SSHOverrides
from smallyi.testing import LOOPBACK, Behaviour, Fleet, HostileFleet, HostileHost, Recorder, _Server
from support import SMALL_YI, cli, write_config

#: how often a streaming host writes a line
INTERVAL = 0.05
#: kill_grace: our hosts ignore TERM (as a wedged remote would), so cancel closes channels after this
GRACE = 0.2
FILE = "/var/log/app.log"
FIRST = follow.tail_command([FILE], 5)
REJOIN = follow.tail_command([FILE], 0)


class Streamer:
    """A host whose every command streams ``<name> <n>`` every INTERVAL until its channel goes.

    ``host`` is a HostileHost (spec, accepted-connection count, commands, ``drop_connections``,
    ``stop``) served by testing's own ``_Server``; only the command side is this test's.
    ``listen`` again after ``host.stop()`` is the host's sshd coming back on the same port.
    """

    def __init__(self, hf: HostileFleet, name: str) -> None:
        self.hf = hf
        self.host = HostileHost(name=name, behaviour=Behaviour.SHELL, port=0)
        self.name = name
        self.sent = 0
        self._frozen: set[Any] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        hf.hosts.append(self.host)  # HostileFleet.close stops it with the others

    def spec(self) -> HostSpec:
        return self.host.spec()

    async def listen(self) -> None:
        host, hf = self.host, self.hf
        client_key = hf.client_key.convert_to_public()
        host._listener = await asyncssh.listen(
            LOOPBACK, host.port, server_host_keys=[hf.host_key], encoding=None,
            server_factory=lambda: _Server(host, client_key), process_factory=self._tail,
            keepalive_interval=0,
        )
        if host.port == 0:
            host.port = host._listener.get_port()
            public = " ".join(hf.host_key.export_public_key("openssh").decode().split()[:2])
            with hf.known_hosts_path.open("a") as f:
                f.write(f"[{LOOPBACK}]:{host.port} {public}\n")

    def black_hole(self) -> None:
        """The network eats every packet of the open connections, both ways, with no FIN or RST: the
        host neither sends nor reads (so it answers no keepalive), and the client sees nothing."""
        for conn in self.host._conns:
            self._frozen.add(conn)
            conn._transport.pause_reading()

    async def _tail(self, process: Any) -> None:
        self.host.commands.append(process.command or "")
        conn = process.channel.get_connection()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                if conn not in self._frozen:
                    self.sent += 1
                    process.stdout.write(f"{self.name} {self.sent}\n".encode())
                await asyncio.sleep(INTERVAL)
        except (OSError, asyncssh.Error):  # the channel or the connection is gone, and `tail` with it
            process.close()
        finally:
            self._tasks.discard(task)

    async def close(self) -> None:
        await self.host.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def streamers(hostile: HostileFleet) -> AsyncIterator[Callable[..., Any]]:
    """``await start(name)``: a listening Streamer; all are closed (their tasks too) afterwards."""
    made: list[Streamer] = []

    async def start(name: str) -> Streamer:
        s = Streamer(hostile, name)
        await s.listen()
        made.append(s)
        return s

    yield start
    for s in made:
        await s.close()


class Watch(Recorder):
    """A Recorder that also keeps when each stdout line arrived, per host (to see lines flow)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: dict[str, list[float]] = {}

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        if isinstance(event, HostOutput) and event.stream == "stdout":
            self.stamps.setdefault(event.host, []).append(time.monotonic())

    def numbers(self, host: str) -> list[int]:
        return [int(line.rsplit(" ", 1)[1]) for line in self.lines(host)]

    def notices(self, host: str) -> list[str]:
        return self.lines(host, "stderr")


def make_engine(hf: HostileFleet, **ssh: Any) -> Engine:
    ssh.setdefault("connect_timeout", 2.0)
    return Engine(hf.ssh_settings(**ssh), ExecutionSettings(kill_grace=GRACE), OutputSettings())


def start_follow(eng: Engine, hosts: list[HostSpec], rec: Watch) -> tuple[Job, asyncio.Task[None]]:
    job = Job(hosts=hosts, command="", timeout=0, concurrency=0)
    return job, asyncio.create_task(eng.follow(job, rec, files=[FILE], lines=5))


async def wait_for(check: Callable[[], object], seconds: float = 5.0, what: str = "condition") -> float:
    """Poll until ``check()`` is true; returns when (monotonic); fails naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {seconds}s")
        await asyncio.sleep(0.01)
    return time.monotonic()


async def stop(job: Job, task: asyncio.Task[None]) -> float:
    """Ctrl-C (what the CLI does: set job.cancel); returns how long the follow took to end."""
    t0 = time.monotonic()
    job.cancel.set()
    await asyncio.wait_for(task, 5)
    return time.monotonic() - t0


def delays(notices: list[str]) -> list[float]:
    return [float(m.group(1)) for n in notices if (m := re.search(r"; rejoining in ([\d.]+)s$", n))]


def count_connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """Every SSH connection the connector tries (port, when): refused ones never reach a server."""
    tried: list[tuple[int, float]] = []
    real = asyncssh.connect

    def counting(host: str, port: int, **kw: Any) -> Any:
        tried.append((port, time.monotonic()))
        return real(host, port, **kw)

    monkeypatch.setattr(ssh_connector.asyncssh, "connect", counting)
    return tried


async def test_dropped_connection_rejoins_on_a_new_connection(
        hostile: HostileFleet, streamers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The host cuts the TCP connection mid-stream (a blip, a NAT reset): only that host reports it,
    saying the connection was lost; the other keeps streaming through the backoff; the rejoin runs
    ``tail -n 0`` on a NEW connection (the dead pooled one is never handed back), says ``rejoined``,
    and new lines flow; Ctrl-C then ends both hosts as cancelled within a moment."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.3)
    a, b = await streamers("a"), await streamers("b")
    eng = make_engine(hostile)
    rec = Watch()
    job, task = start_follow(eng, [a.spec(), b.spec()], rec)
    await wait_for(lambda: len(rec.lines("a")) >= 3 and len(rec.lines("b")) >= 3, what="both streaming")

    last_before = rec.numbers("a")[-1]
    a.host.drop_connections()
    dropped = time.monotonic()
    await wait_for(lambda: rec.notices("a"), 2, "drop-out notice")
    b_at_drop = len(rec.lines("b"))
    rejoined = await wait_for(lambda: "[small-yi] rejoined" in rec.notices("a"), 3, "rejoined")
    await wait_for(lambda: rec.numbers("a")[-1] > last_before + 2, 2, "new lines from the rejoined host")

    notice = rec.notices("a")[0]
    assert notice.startswith(f"[small-yi] connection to 127.0.0.1:{a.host.port} lost while the command ran"), notice
    assert notice.endswith("; rejoining in 0.3s"), notice
    assert rec.notices("a") == [notice, "[small-yi] rejoined"]
    assert rejoined - dropped >= 0.3  # it waited the backoff
    assert rec.notices("b") == []
    # b never stalled: lines all through a's outage (0.3 s at one line per 50 ms)
    assert len([t for t in rec.stamps["b"] if dropped <= t <= rejoined]) >= 3
    assert len(rec.lines("b")) > b_at_drop
    # a new connection for the rejoin; the dead one was dropped from the pool, not reused
    assert (a.host.connections, b.host.connections) == (2, 1)
    assert a.host.commands == [FIRST, REJOIN] and b.host.commands == [FIRST]
    ssh = eng.stats()["connectors"]["ssh"]
    assert (ssh["opened"], ssh["reused"], ssh["connections"]) == (3, 0, 2), ssh

    took = await stop(job, task)
    assert took < 1.5, took
    rec.check(["a", "b"])
    assert {h: (rec.status(h), rec.done[h].reason) for h in "ab"} == {h: ("cancelled", "stopped") for h in "ab"}
    await eng.close()


async def test_host_down_for_3s_is_retried_with_backoff_while_others_flow(
        hostile: HostileFleet, streamers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A reboot: the connection dies and the port refuses for 3 s, then sshd is back on the same port.
    The follower tries a handful of times with doubling delays capped at the maximum (not a tight
    loop: every try is counted where the connector opens connections), each try reported as refused;
    the other host streams without a gap meanwhile; once back, one new connection rejoins it."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.2)
    monkeypatch.setattr(follow, "BACKOFF_MAX", 0.8)
    tried = count_connects(monkeypatch)
    a, b = await streamers("a"), await streamers("b")
    eng = make_engine(hostile)
    rec = Watch()
    job, task = start_follow(eng, [a.spec(), b.spec()], rec)
    await wait_for(lambda: len(rec.lines("a")) >= 3 and len(rec.lines("b")) >= 3, what="both streaming")

    await a.host.stop()  # connections cut, listener closed: connection refused from now on
    down = time.monotonic()
    await asyncio.sleep(3.0)
    await a.listen()  # the same port again
    up = time.monotonic()
    last_before = rec.numbers("a")[-1]
    await wait_for(lambda: "[small-yi] rejoined" in rec.notices("a"), 2, "rejoined after the restart")
    await wait_for(lambda: rec.numbers("a")[-1] > last_before + 2, 2, "new lines after the restart")
    # every try since the drop-out was refused but the last, which rejoined (counted once it is all over:
    # a try made just before the port came back may be reported a moment later, on a loaded machine)
    tries = [t for port, t in tried if port == a.host.port and t >= down]
    notices = list(rec.notices("a"))
    refused = notices[:notices.index("[small-yi] rejoined")]

    # backoff 0.2, 0.4, then 0.8 s each: about 5 tries in 3 s; a tight loop would make thousands
    assert 3 <= len(tries) - 1 <= 6 and all(t < up + 2 for t in tries), (tries, up)
    assert len(refused) == len(tries)  # the drop-out, then one notice per refused try
    assert delays(refused) == [0.2, 0.4, 0.8, 0.8, 0.8, 0.8][: len(refused)], refused
    assert "lost while the command ran" in refused[0], refused
    assert all(n.startswith(f"[small-yi] 127.0.0.1:{a.host.port}: connection refused; ") for n in refused[1:]), refused
    gaps = [t2 - t1 for t1, t2 in zip(rec.stamps["b"], rec.stamps["b"][1:], strict=False) if down <= t1 <= up]
    assert len(gaps) >= 30 and max(gaps) < 0.5, (len(gaps), max(gaps, default=0))
    assert rec.notices("b") == []
    assert (a.host.connections, b.host.connections) == (2, 1)  # refused tries never reached the server
    assert a.host.commands == [FIRST, REJOIN]

    assert await stop(job, task) < 1.5
    rec.check(["a", "b"])
    await eng.close()


async def test_black_holed_connection_detected_by_keepalive(
        hostile: HostileFleet, streamers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Packets vanish without a FIN or RST (cable pulled, host frozen): nothing on the socket says the
    connection is dead, so only the SSH keepalive can tell. After ``keepalive_interval`` x 4 the host
    is reported as not answering keepalives and rejoined on a new connection; the other host is not
    touched. (With the default 30 s interval that takes about two minutes.)"""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.2)
    a, b = await streamers("a"), await streamers("b")
    eng = make_engine(hostile, keepalive_interval=0.2)
    rec = Watch()
    job, task = start_follow(eng, [a.spec(), b.spec()], rec)
    await wait_for(lambda: len(rec.lines("a")) >= 3 and len(rec.lines("b")) >= 3, what="both streaming")

    a.black_hole()
    holed = time.monotonic()
    noticed = await wait_for(lambda: rec.notices("a"), 3, "drop-out notice")
    await wait_for(lambda: "[small-yi] rejoined" in rec.notices("a"), 2, "rejoined")
    last = rec.numbers("a")[-1]
    await wait_for(lambda: rec.numbers("a")[-1] > last + 2, 2, "new lines on the new connection")

    notice = rec.notices("a")[0]
    assert "not responding to keepalive" in notice and notice.endswith("; rejoining in 0.2s"), notice
    assert 0.5 < noticed - holed < 2.0  # 4 missed keepalives at 0.2 s, not at once nor never
    assert rec.notices("b") == []
    assert (a.host.connections, b.host.connections) == (2, 1)
    assert a.host.commands == [FIRST, REJOIN]

    assert await stop(job, task) < 1.5
    rec.check(["a", "b"])
    await eng.close()


@pytest.mark.parametrize("how", ["cancel-event", "task-cancel"])
async def test_cancel_ends_retries_connects_and_sessions_at_once(
        hostile: HostileFleet, streamers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Ctrl-C (job.cancel, as the CLI and the API do) or cancelling the task (asyncio.run on Ctrl-C)
    while one host waits out its backoff, one is stuck connecting (a host that never answers SSH) and
    one streams: everything ends within a moment, every host cancelled/stopped, and no retry happens
    afterwards."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.3)
    tried = count_connects(monkeypatch)
    down = await hostile.start(Behaviour.REFUSE, "down")
    silent = await hostile.start(Behaviour.SILENT, "silent")
    a = await streamers("a")
    eng = make_engine(hostile, connect_timeout=10.0)
    rec = Watch()
    hosts = [down.spec(), silent.spec(), a.spec()]
    job, task = start_follow(eng, hosts, rec)
    await wait_for(lambda: len(rec.notices("down")) >= 2 and len(rec.lines("a")) >= 3, 3, "a retry cycle")
    assert rec.notices("silent") == []  # still connecting

    t0 = time.monotonic()
    if how == "cancel-event":
        job.cancel.set()
        await asyncio.wait_for(task, 5)
    else:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    took = time.monotonic() - t0
    assert took < 1.0, took
    rec.check(hosts)
    assert {h.name: (rec.status(h.name), rec.done[h.name].reason) for h in hosts} == \
        {h.name: ("cancelled", "stopped") for h in hosts}
    tries, notices = len(tried), len(rec.notices("down"))
    await asyncio.sleep(1.0)  # > the next backoff (0.3 x 2^n): a leftover retry loop would try again
    assert (len(tried), len(rec.notices("down"))) == (tries, notices)
    assert a.host.connections == 1 and a._tasks == set()  # the channel was closed: its `tail` ended
    await eng.close()


@pytest.fixture
def fleet_log() -> Iterator[Path]:
    path = Path("/tmp") / f"small-yi-rejoin-{uuid.uuid4().hex}.log"
    path.write_text("")
    path.chmod(0o644)  # the fleet's login user reads it
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.fleet
async def test_openssh_host_keeps_flowing_while_another_host_reboots(
        hostile: HostileFleet, streamers: Callable[..., Any], fleet: Fleet, fleet_log: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One follow over a real OpenSSH host (real ``tail -F`` on a file this test appends to) and a
    host that reboots: the OpenSSH host's lines keep coming during the outage with no notice, and
    the rebooted host rejoins."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.2)
    a = await streamers("a")
    real = fleet.specs(1)[0]
    real = HostSpec(name=real.name, address=real.address, port=real.port, user=real.user, ssh=SSHOverrides(
        private_key=str(fleet.directory / "id_ed25519"), known_hosts=str(fleet.directory / "known_hosts")))
    eng = make_engine(hostile)
    rec = Watch()
    job = Job(hosts=[a.spec(), real], command="", timeout=0, concurrency=0)
    task = asyncio.create_task(eng.follow(job, rec, files=[str(fleet_log)], lines=0))

    async def write() -> None:
        n = 0
        while True:
            n += 1
            with fleet_log.open("a") as f:
                f.write(f"real {n}\n")
            await asyncio.sleep(INTERVAL)

    writer = asyncio.create_task(write())
    try:
        await wait_for(lambda: len(rec.lines("a")) >= 3 and len(rec.lines(real.name)) >= 3, 5, "both streaming")
        await a.host.stop()
        down = time.monotonic()
        await asyncio.sleep(1.0)
        await a.listen()
        up = time.monotonic()
        await wait_for(lambda: "[small-yi] rejoined" in rec.notices("a"), 3, "rejoined")
        last = rec.numbers("a")[-1]
        await wait_for(lambda: rec.numbers("a")[-1] > last + 2, 2, "new lines after the restart")
    finally:
        writer.cancel()
    during = [t for t in rec.stamps[real.name] if down <= t <= up]
    assert len(during) >= 8, len(during)  # ~20 lines written in that second
    assert rec.notices(real.name) == []
    assert rec.numbers(real.name) == list(range(rec.numbers(real.name)[0], rec.numbers(real.name)[-1] + 1))
    assert "lost while the command ran" in rec.notices("a")[0]
    assert await stop(job, task) < 2.0
    rec.check(["a", real.name])
    await eng.close()


async def test_cli_reports_a_dropped_connection_rejoins_and_exits_on_ctrl_c(
        hostile: HostileFleet, streamers: Callable[..., Any], tmp_path: Path) -> None:
    """``small-yi logs`` as a user runs it: the drop-out and the rejoin are printed as
    ``[host]! [small-yi] ...`` (default 1 s backoff), lines resume, and SIGINT ends it promptly, exit 0."""
    a = await streamers("web-1")
    cfg = write_config(tmp_path, extra=(
        f"ssh:\n  user: tester\n  private_key: {hostile.key_path}\n  known_hosts: {hostile.known_hosts_path}\n"
        "  connect_timeout: 5s\nexecution:\n  kill_grace: 200ms\n"))
    r = await asyncio.to_thread(cli, "hosts", "add", "web-1", "--address", LOOPBACK, "--port", str(a.host.port),
                                "--group", "web", config=cfg)
    assert r.returncode == 0, r.stderr
    proc = await asyncio.create_subprocess_exec(
        SMALL_YI, "logs", "--group", "web", "--file", FILE, "--lines", "0", "--config", str(cfg),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            out.append(raw.decode().rstrip("\n"))

    reader = asyncio.create_task(read())
    try:
        await wait_for(lambda: sum(ln.startswith("[web-1] web-1 ") for ln in out) >= 3, 15, f"lines: {out}")
        a.host.drop_connections()
        await wait_for(lambda: "[web-1]! [small-yi] rejoined" in out, 5, f"rejoined: {out}")
        at = out.index("[web-1]! [small-yi] rejoined")
        await wait_for(lambda: sum(ln.startswith("[web-1] web-1 ") for ln in out[at:]) >= 3, 3, "lines again")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 10)
        took = time.monotonic() - t0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.wait_for(reader, 5)
    drop = [ln for ln in out if ln.startswith("[web-1]! [small-yi] connection to")]
    assert len(drop) == 1 and drop[0].endswith("; rejoining in 1s"), out
    assert code == 0 and took < 2.0, (code, took, out[-5:])
    assert a.host.commands == [REJOIN, REJOIN]  # --lines 0 both times
