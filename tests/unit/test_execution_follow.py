"""Log follow: quoting, grep validation, filtering, drop-out notices and rejoin with backoff."""

from __future__ import annotations

import asyncio
import shlex

import pytest

from smallyi.config import ExecutionSettings, OutputSettings, SSHSettings
from smallyi.errors import InputError
from smallyi.execution import follow
from smallyi.execution.connectors.fake import FakeConnector, FakeHost
from smallyi.execution.engine import Engine, Job
from smallyi.inventory.hosts import HostSpec
from smallyi.testing import Recorder

INF = float("inf")


def make_engine(fake: FakeConnector) -> Engine:
    return Engine(SSHSettings(connect_timeout=1), ExecutionSettings(kill_grace=0.05), OutputSettings(),
                  connectors={"ssh": fake})


async def follow_for(eng: Engine, hosts: list[HostSpec], seconds: float, **kw: object) -> Recorder:
    rec = Recorder()
    job = Job(hosts=hosts, command="", timeout=0, concurrency=0)
    asyncio.get_running_loop().call_later(seconds, job.cancel.set)
    await eng.follow(job, rec, **kw)  # type: ignore[arg-type]
    rec.check(hosts)
    return rec


def test_tail_command_quotes_every_file() -> None:
    """File names reach the shell quoted: no injection, spaces survive."""
    cmd = follow.tail_command(["/var/log/a b.log", "x; rm -rf /", "-n"], 5)
    assert cmd.startswith("tail -n 5 -F -- ")
    assert shlex.split(cmd)[5:] == ["/var/log/a b.log", "x; rm -rf /", "-n"]


def test_invalid_grep_is_input_error() -> None:
    """An invalid regular expression is refused up front, naming the grep field."""
    with pytest.raises(InputError) as err:
        follow.compile_grep("([")
    assert err.value.field == "grep"


@pytest.mark.parametrize("files", [[], "one.log", [""], ["a\nb"]])
def test_bad_file_lists_refused(files: list[str]) -> None:
    """No file, a bare string, or an unusable path is an InputError on files."""
    with pytest.raises(InputError) as err:
        follow.check_files(files)
    assert err.value.field == "files"


def test_negative_lines_refused() -> None:
    """--lines must be ≥ 0."""
    with pytest.raises(InputError):
        follow.Follower(make_engine(FakeConnector()), files=["/x"], lines=-1, grep=None)


async def test_follow_filters_with_grep_until_cancelled() -> None:
    """Only stdout lines matching grep are emitted; cancel ends every host as cancelled/stopped."""
    fake = FakeConnector(lambda h, c: FakeHost(stdout=["GET /a", "POST /b", "GET /c"], duration=INF))
    hosts = [HostSpec(name=f"w{i}", address=f"10.0.0.{i}") for i in range(3)]
    rec = await follow_for(make_engine(fake), hosts, 0.1, files=["/var/log/x.log"], lines=5, grep=r"^GET")
    for h in hosts:
        assert rec.lines(h.name) == ["GET /a", "GET /c"]
        assert rec.status(h.name) == "cancelled" and rec.done[h.name].reason == "stopped"
    assert fake.commands[0][1] == "tail -n 5 -F -- /var/log/x.log"


async def test_dropped_host_reported_and_rejoined(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose tail ends is reported on stderr, rejoined with -n 0, and says it rejoined."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.01)
    calls: list[str] = []

    def plan(host: HostSpec, command: str) -> FakeHost:
        calls.append(command)
        if len(calls) == 1:
            return FakeHost(stdout=["old"], exit_code=1)
        return FakeHost(stdout=["new"], duration=INF)

    h = HostSpec(name="w", address="10.0.0.1")
    rec = await follow_for(make_engine(FakeConnector(plan)), [h], 0.2, files=["/l"], lines=3)
    assert calls == ["tail -n 3 -F -- /l", "tail -n 0 -F -- /l"]
    assert rec.lines("w") == ["old", "new"]
    notices = rec.lines("w", "stderr")
    assert notices == ["[small-yi] tail ended: exit status 1; rejoining in 0.01s", "[small-yi] rejoined"]
    assert all(e.size == 0 for e in rec.output["w"] if e.stream == "stderr")


async def test_unreachable_host_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable host is retried with doubling delays, each attempt reported."""
    monkeypatch.setattr(follow, "BACKOFF_FIRST", 0.02)
    fake = FakeConnector({"down": FakeHost(unreachable="connection refused"),
                          "up": FakeHost(stdout=["fine"], duration=INF)})
    hosts = [HostSpec(name="down", address="10.0.0.9"), HostSpec(name="up", address="10.0.0.8")]
    rec = await follow_for(make_engine(fake), hosts, 0.2, files=["/l"], lines=0)
    notices = rec.lines("down", "stderr")
    assert notices[:3] == [
        "[small-yi] connection refused; rejoining in 0.02s",
        "[small-yi] connection refused; rejoining in 0.04s",
        "[small-yi] connection refused; rejoining in 0.08s",
    ]
    assert rec.lines("up") == ["fine"] and rec.lines("up", "stderr") == []
