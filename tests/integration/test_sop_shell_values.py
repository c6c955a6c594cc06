"""SOP values reaching shell commands are data in every context, on real hosts.

The corpus ``tests/cases/sop/shell_values.yaml`` lists contexts (a value in a here-document, in a nested
``sh -c '...'``, after a comment, inside ``$(...)`` in double quotes, in a script step, ...) and values
(benign, hostile, and ones bash would evaluate as code). Each context runs with every value on a fleet
host (OpenSSH, login shell bash) and on ``local`` (``/bin/sh``), a few steps of one SOP run, one
command per context. A marker file that every hostile value tries to create must never appear, and
each value must arrive byte for byte where the context passes it on.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from smallyi.config import parse_settings
from smallyi.errors import InputError
from smallyi.inventory.hosts import HostSpec
from smallyi.runtime import Runtime
from smallyi.sop import automation
from smallyi.sop.problems import SopInvalid
from smallyi.sop.service import SopService, Starter
from smallyi.sop.validate import load_sop
from smallyi.testing import Fleet

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

CORPUS: dict[str, Any] = yaml.safe_load((Path(__file__).parents[1] / "cases" / "sop" / "shell_values.yaml").read_text())
CONTEXTS: list[dict[str, Any]] = CORPUS["contexts"]
INTS = [0, 7, -3, 123456789]
FLEET_HOST = "host-001"


@dataclass
class Lab:
    sop: SopService
    folder: Path

    @property
    def marker(self) -> str:
        """Where a hostile value that ran leaves a file, named for the context and value it ran from."""
        return f"{self.folder}/pwned-$SOPCTX-$SOPV"

    def values(self, kind: str) -> list[str]:
        return [v.replace("{m}", str(self.marker)) for v in CORPUS["values"][kind]]


@pytest.fixture
async def lab(tmp_path: Path, ssh_fleet: Fleet) -> AsyncIterator[Lab]:
    name, address = ssh_fleet.hosts[0]
    assert name == FLEET_HOST
    text = (f"database:\n  source: {tmp_path}/s.db\nsecrets:\n  key_file: {tmp_path}/master.key\n"
            f"{ssh_fleet.ssh_yaml()}sop:\n  max_parallel: 16\n")
    rt = await Runtime.open(parse_settings(text, base_dir=tmp_path), kind="cli")
    await rt.inventory.upsert([HostSpec(FLEET_HOST, address, port=ssh_fleet.port, groups=("fleet",))],
                              source="manual")
    auto = automation.build(rt)
    folder = Path(f"/tmp/smallyi-sopvalues-{uuid.uuid4().hex[:8]}")
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # the fleet's login user may create the marker here: a hostile value would show
    try:
        yield Lab(auto.sop, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        await auto.close()
        await rt.close()


def _sid(ctx: dict[str, Any]) -> str:
    return ctx["id"].replace("-", "_")


def _at(text: str, i: int) -> str:
    """The context's text for value ``i``: ``@V@`` and ``.vars.v`` read variable ``v<i>``."""
    return re.sub(r"\.vars\.v\b", f".vars.v{i}", text.replace("@V@", "{{ .vars.v }}"))


def _hosts(ctx: dict[str, Any]) -> list[str]:
    return [FLEET_HOST] if ctx.get("bash_only") else [FLEET_HOST, "local"]


def _tag(ctx: dict[str, Any], i: int) -> str:
    """Before value ``i``: name the context and value (for the marker's name) and print a separator line."""
    return f"export SOPCTX={ctx['id']} SOPV={i}; printf '@@{i}@@\\n'"


def _step(ctx: dict[str, Any], count: int, sid: str | None = None) -> dict[str, Any]:
    """One step running the context once per value ``v0 .. v<count-1>``, each after a ``@@i@@`` line."""
    step: dict[str, Any] = {"id": sid or _sid(ctx), "needs": [], "on_failure": "continue", "timeout": 60,
                            "target": {"hosts": _hosts(ctx)}}
    if "cmd" in ctx:
        step.update(type="exec", cmd="\n".join(f"{_tag(ctx, i)}\n{_at(ctx['cmd'], i)}" for i in range(count)))
        return step
    python = ctx.get("interpreter", "").startswith("python")
    args = ctx.get("args", [])
    blocks = []
    for i in range(count):
        body = _at(ctx["script"], i)
        for k in range(len(args), 0, -1):  # the block's own arguments come after those of the blocks before it
            n = i * len(args) + k
            body = body.replace(f"${k}", f"${{{n}}}").replace("sys.argv[-1]", f"sys.argv[{n + 1}]")
        blocks.append((f"print('@@{i}@@')\n" if python else f"{_tag(ctx, i)}\n") + body)
    step.update(type="script", script="\n".join(blocks), args=[_at(a, i) for i in range(count) for a in args])
    if "interpreter" in ctx:
        step["interpreter"] = ctx["interpreter"]
    return step


def _source(steps: list[dict[str, Any]], count: int, *, int_vars: bool = False) -> str:
    decl: Any = {"type": "int", "default": 0} if int_vars else "x"
    return yaml.safe_dump({"vars": {f"v{i}": decl for i in range(count)}, "steps": steps}, sort_keys=False)


def _expected(ctx: dict[str, Any], i: int, value: str) -> str:
    return str(ctx["prints"]).replace("{ref}", f"${{SY_V_v{i}}}").replace("{v}", value)


def _segments(output: str) -> dict[int, str]:
    parts = re.split(r"(?m)^@@(\d+)@@(?:\n|$)", output)
    return {int(parts[k]): parts[k + 1].removesuffix("\n") for k in range(1, len(parts) - 1, 2)}


async def _run(lab: Lab, source: str, values: dict[str, Any]) -> dict[str, Any]:
    sop, _ = load_sop(source)
    run_id = await lab.sop.start(sop, source, starter=Starter("tester"), variables=values)
    await lab.sop.wait(run_id, poll=0.2)
    return {s.step_id: s for s in await lab.sop.records.steps(run_id)}


def _check_prints(ctx: dict[str, Any], step: Any, values: list[Any], problems: list[str]) -> None:
    """Every host ran the context to the end, and where it prints the value, it printed it exactly."""
    if step.status != "success":
        problems.append(f"{ctx['id']}: step {step.status}: {step.reason}")
        return
    for host in _hosts(ctx):
        got = _segments(step.result["hosts"][host]["output"])
        if sorted(got) != list(range(len(values))):
            problems.append(f"{ctx['id']} on {host}: ran {len(got)} of {len(values)} values: {got}")
            continue
        if "prints" not in ctx:
            continue
        for i, value in enumerate(values):
            want = _expected(ctx, i, str(value))
            if got[i] != want:
                problems.append(f"{ctx['id']} on {host}: value {value!r} printed {got[i]!r}, expected {want!r}")


async def test_values_are_data_in_every_context(lab: Lab) -> None:
    """Every context x every value on bash (fleet) and sh (local): the marker never appears; values print
    exactly where they are passed on; contexts where a value would be code or a number are refused at
    validation; values bash would evaluate are refused before any shell sees them."""
    control = lab.folder / "control"
    steps = await _run(lab, _source([{"id": "control", "type": "exec", "target": {"hosts": [FLEET_HOST, "local"]},
                                      "cmd": f"touch {control}-$(id -un)"}], 0), {})
    assert steps["control"].status == "success", steps["control"].reason
    assert len(list(lab.folder.glob("control-*"))) == 2  # both hosts can create files here: a marker would show

    benign, hostile, evaluated = lab.values("benign"), lab.values("hostile"), lab.values("bash_evaluated")
    strings = benign + hostile
    problems: list[str] = []
    runnable: list[dict[str, Any]] = []
    for ctx in CONTEXTS:
        if "refused" in ctx:
            try:
                load_sop(_source([_step(ctx, 1)], 1))
                problems.append(f"{ctx['id']}: validation accepted it, expected refusal ({ctx['refused']})")
            except SopInvalid as exc:
                if ctx["refused"] not in str(exc):
                    problems.append(f"{ctx['id']}: refused, but not for {ctx['refused']!r}: {exc}")
        else:
            runnable.append(ctx)

    # every string value, in every context, in one run: a step per context
    plain = [c for c in runnable if c.get("type") != "int"]
    steps = await _run(lab, _source([_step(c, len(strings)) for c in plain], len(strings)),
                       {f"v{i}": v for i, v in enumerate(strings)})
    for ctx in plain:
        _check_prints(ctx, steps[_sid(ctx)], strings, problems)

    # values bash would evaluate never reach a shell: each step is refused before it sends anything
    steps = await _run(lab, _source([_step(c, len(evaluated)) for c in plain], len(evaluated)),
                       {f"v{i}": v for i, v in enumerate(evaluated)})
    for ctx in plain:
        s = steps[_sid(ctx)]
        if s.status != "failed" or "bash" not in s.reason or s.task_ids:
            problems.append(f"{ctx['id']}: a value bash evaluates was not refused: {s.status} {s.reason!r}")

    # int contexts: any string is refused before the run starts; ints run and print exactly
    ints = [c for c in runnable if c.get("type") == "int"]
    for ctx in ints:
        for value in [*strings, *evaluated, "1.5", "0x10", " 1", "1\n"]:
            try:
                await _run(lab, _source([_step(ctx, 1)], 1, int_vars=True), {"v0": value})
                problems.append(f"{ctx['id']}: int variable took {value!r}")
            except InputError as exc:
                if "v0" not in exc.message:
                    problems.append(f"{ctx['id']}: refusal of {value!r} does not name the variable: {exc.message}")
    steps = await _run(lab, _source([_step(c, len(INTS)) for c in ints], len(INTS), int_vars=True),
                       {f"v{i}": v for i, v in enumerate(INTS)})
    for ctx in ints:
        _check_prints(ctx, steps[_sid(ctx)], INTS, problems)

    created = sorted(p.name for p in lab.folder.iterdir() if not p.name.startswith("control-"))
    assert not created, f"a value ran as a command: {created}; problems: {problems[:20]}"
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
