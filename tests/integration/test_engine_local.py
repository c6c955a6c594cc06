"""The local connector: the server's own shell, with the same events, timeouts and cancel."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from smallyi.config import ExecutionSettings, OutputSettings, SSHSettings
from smallyi.execution.engine import Engine, Job
from smallyi.inventory.hosts import HostSpec
from smallyi.testing import Recorder

GRACE = 0.3
ME = HostSpec(name="me", address="", connector="local")


def make_engine() -> Engine:
    return Engine(SSHSettings(), ExecutionSettings(kill_grace=GRACE), OutputSettings())


async def run(command: str, timeout: float = 5.0, cancel_after: float | None = None) -> tuple[Recorder, float]:
    rec = Recorder()
    job = Job(hosts=[ME], command=command, timeout=timeout, concurrency=1)
    if cancel_after is not None:
        asyncio.get_running_loop().call_later(cancel_after, job.cancel.set)
    t0 = time.perf_counter()
    await make_engine().run(job, rec)
    rec.check([ME])
    return rec, time.perf_counter() - t0


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_output_and_exit_status() -> None:
    """stdout and stderr lines arrive per stream; a non-zero exit is failed with its code."""
    rec, _ = await run("echo out; echo err >&2; printf 'no newline'; exit 5")
    assert rec.lines("me") == ["out", "no newline"] and rec.lines("me", "stderr") == ["err"]
    done = rec.done["me"]
    assert (done.status, done.exit_code, done.reason) == ("failed", 5, "exit status 5")


async def test_success() -> None:
    """Exit 0 is success with no reason."""
    rec, _ = await run("true")
    assert (rec.status("me"), rec.done["me"].reason, rec.done["me"].exit_code) == ("success", "", 0)


async def test_timeout_kills_the_process_group() -> None:
    """On timeout the command and everything it started are stopped; partial output is kept."""
    rec, took = await run("echo $$; sleep 30 & echo $!; wait", timeout=0.3)
    assert (rec.status("me"), rec.done["me"].reason) == ("timeout", "timed out after 0.3s")
    shell, child = (int(x) for x in rec.lines("me"))
    assert took < 0.3 + GRACE + 1
    await asyncio.sleep(0.1)
    assert not alive(shell) and not alive(child)


async def test_cancel_stops_the_command() -> None:
    """Cancel stops a running local command, which ends cancelled."""
    rec, took = await run("echo $$; exec sleep 30", timeout=0, cancel_after=0.2)
    assert (rec.status("me"), rec.done["me"].reason) == ("cancelled", "cancelled")
    assert took < 0.2 + GRACE + 1
    await asyncio.sleep(0.1)
    assert not alive(int(rec.lines("me")[0]))


async def test_stubborn_command_killed_after_grace() -> None:
    """A command ignoring TERM is killed after kill_grace."""
    rec, took = await run("trap '' TERM; echo $$; sleep 30", timeout=0.2)
    assert rec.status("me") == "timeout"
    assert GRACE <= took < 0.2 + GRACE + 1
    await asyncio.sleep(0.1)
    assert not alive(int(rec.lines("me")[0]))


async def test_killed_by_signal() -> None:
    """A command killed by a signal is failed, naming the signal."""
    rec, _ = await run("kill -TERM $$")
    assert (rec.status("me"), rec.done["me"].reason, rec.done["me"].exit_code) == (
        "failed", "killed by signal TERM", None)


async def test_background_child_holding_stdout() -> None:
    """A command that exits while a background child keeps stdout open ends after kill_grace."""
    rec, took = await run("echo started; sleep 2 &", timeout=10)
    assert rec.status("me") == "success" and "output was still open" in rec.done["me"].reason
    assert rec.lines("me") == ["started"]
    assert took < GRACE + 1


async def test_binary_output() -> None:
    """Invalid UTF-8 from a local command is replaced, not fatal."""
    rec, _ = await run("printf 'x\\377\\376y\\n'")
    assert rec.lines("me") == ["x\ufffd\ufffdy"]
