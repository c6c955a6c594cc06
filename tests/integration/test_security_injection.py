"""Nothing a user types into a field reaches a shell unquoted: hostile host names, addresses, users,
labels, groups and followed file paths are refused or passed as data, never run (a marker file proves it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smallyi.auth.caller import Caller
from smallyi.auth.rbac import EVERY_HOST
from smallyi.config import parse_settings
from smallyi.errors import InputError
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.selectors import Selector
from smallyi.logs.follow import follow
from smallyi.runtime import Runtime
from smallyi.tasks.queries import ResultFilter
from smallyi.tasks.service import TaskRequest


def payloads(marker: Path) -> list[str]:
    m = str(marker)
    return [f"x; touch {m}", f"$(touch {m})", f"`touch {m}`", f"x && touch {m}", f"x | touch {m}",
            f"x\ntouch {m}", f"'; touch {m}; '", f"\"; touch {m}; \"", f"-o ProxyCommand=touch {m}"]


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    s = parse_settings(f"database:\n  source: {tmp_path}/i.db\nsecrets:\n  key_file: {tmp_path}/k\n", base_dir=tmp_path)
    runtime = await Runtime.open(s, kind="cli")
    yield runtime
    await runtime.close()


@pytest.mark.parametrize("field", ["name", "address", "user", "group"])
async def test_hostile_host_fields_are_refused(rt: Runtime, tmp_path: Path, field: str) -> None:
    """Host names, addresses, login users and group names holding shell syntax are refused at the door."""
    for p in payloads(tmp_path / "pwned"):
        spec = {"name": "h1", "address": "127.0.0.1", "user": "", "groups": ("g",)}
        if field == "group":
            spec["groups"] = (p,)
        else:
            spec[field] = p
        host = HostSpec(name=str(spec["name"]), address=str(spec["address"]), user=str(spec["user"]),
                        groups=tuple(spec["groups"]))  # type: ignore[arg-type]
        with pytest.raises(InputError):
            await rt.inventory.upsert([host], source="manual")
    assert not (tmp_path / "pwned").exists()


async def test_label_values_are_data_even_when_they_look_like_commands(rt: Runtime, tmp_path: Path) -> None:
    """A label value full of shell syntax is stored and matched as text; running on its selection runs only
    the given command."""
    marker = tmp_path / "pwned"
    value = f"$(touch {marker}); `touch {marker}`"
    await rt.inventory.upsert([HostSpec(name="me", address="127.0.0.1", labels={"role": value},
                                        connector="local")], source="manual")
    tid = (await rt.tasks.submit(TaskRequest(Selector(labels={"role": value}), "echo ok"), Caller("t"))).task_id
    await rt.tasks.wait(tid)
    rows, _ = await rt.archive.results(ResultFilter(task=tid), scope=EVERY_HOST, limit=5, offset=0)
    assert [(r.host_name, r.status, r.stdout) for r in rows] == [("me", "success", "ok")]
    assert not marker.exists()


async def test_followed_file_paths_are_quoted_for_the_shell(rt: Runtime, tmp_path: Path) -> None:
    """``logs`` on the local host (a real /bin/sh) with hostile file names runs ``tail`` on those exact names."""
    marker = tmp_path / "pwned"
    log = tmp_path / "a.log"
    log.write_text("line one\n")
    events: list[dict[str, object]] = []
    cancel = asyncio.Event()
    files = [str(log), *(p for p in payloads(marker) if "\n" not in p)]
    task = asyncio.create_task(follow(rt.engine, rt.inventory, Selector(hosts=("local",)), files=files, lines=5,
                                      grep=None, on_event=events.append, cancel=cancel, user="t"))
    for _ in range(50):
        if any(e.get("text") == "line one" for e in events):
            break
        await asyncio.sleep(0.1)
    cancel.set()
    await asyncio.wait_for(task, 15)
    assert any(e.get("text") == "line one" for e in events)
    assert not marker.exists()
    with pytest.raises(InputError, match="not a usable path"):  # a newline cannot even be asked for
        await follow(rt.engine, rt.inventory, Selector(hosts=("local",)), files=[f"x\ntouch {marker}"], lines=1,
                     grep=None, on_event=events.append, cancel=cancel, user="t")
