"""SOP validation from data files: valid SOPs plan as expected; every mistake is reported with line, step, field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from smallyi.sop.dag import plan
from smallyi.sop.problems import SopInvalid
from smallyi.sop.validate import Knowns, load_sop, parse_sop

CASES = Path(__file__).resolve().parents[1] / "cases" / "sop"
KNOWNS = Knowns(ticket_templates=frozenset({"disk-full-high", "generic"}), channels=frozenset({"ops", "oncall"}),
                sops=frozenset({"restart-nginx"}), environments={"prod": {"REGION": "x"}})
_EXPECT = re.compile(r"^# expect: (\d+) (\S+) (\S+) (.*)$")


def _header(text: str, key: str) -> str | None:
    m = re.search(rf"^# {key}: (.*)$", text, re.M)
    return m.group(1) if m else None


@pytest.mark.parametrize("path", sorted((CASES / "valid").glob("*.yaml")), ids=lambda p: p.stem)
def test_valid_cases_plan_as_expected(path: Path) -> None:
    """A valid case passes strict validation with no problem, and its waves are the expected ones."""
    text = path.read_text()
    sop, problems = load_sop(text, source=path.name, strict=True, knowns=KNOWNS)
    assert problems == []
    assert [list(w) for w in plan(sop).waves] == json.loads(_header(text, "waves") or "[]")


@pytest.mark.parametrize("path", sorted((CASES / "invalid").glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_cases_name_line_step_and_field(path: Path) -> None:
    """Each expected problem is reported, in line order, with its line, step id, field and message."""
    text = path.read_text()
    strict = _header(text, "strict") == "true"
    expected = [m.groups() for m in map(_EXPECT.match, text.splitlines()) if m]
    assert expected, "a case lists its expected problems"
    _, problems = parse_sop(text, source=path.name, strict=strict, knowns=KNOWNS)
    errors = [p for p in problems if not p.warning]
    got = [(str(p.line), p.step or "-", p.field or "-", p.message) for p in errors]
    assert len(got) == len(expected), "\n".join(p.describe(path.name) for p in problems)
    for (line, step, field, message), (e_line, e_step, e_field, e_msg) in zip(got, expected, strict=True):
        assert (line, step, field) == (e_line, e_step, e_field), message
        assert e_msg in message
    with pytest.raises(SopInvalid) as exc:
        load_sop(text, source=path.name, strict=strict, knowns=KNOWNS)
    assert all(e_msg in exc.value.message for *_, e_msg in expected)


@pytest.mark.parametrize("path", [p for p in sorted((CASES / "invalid").glob("*.yaml"))
                                  if "# warnings:" in p.read_text()], ids=lambda p: p.stem)
def test_strict_only_problems_are_warnings_otherwise(path: Path) -> None:
    """Unknown fields and undefined names are warnings without --strict-mode: the SOP still loads."""
    text = path.read_text()
    _sop, problems = load_sop(text, source=path.name, strict=False, knowns=KNOWNS)
    assert len(problems) == int(_header(text, "warnings") or 0)
    assert all(p.warning for p in problems)


def test_problem_describes_file_line_step_and_field() -> None:
    """The CLI's line reads FILE:LINE: step ID: FIELD: message."""
    _, problems = parse_sop("steps:\n  - id: a\n    type: exec\n    cmd: echo\n    timeout: soon\n", source="x.yaml")
    assert problems[0].describe("x.yaml").startswith("x.yaml:5: step a: timeout: 'soon' is not a duration")


def test_timeout_accepts_seconds_and_go_durations() -> None:
    """`timeout: 10` (the original's) is ten seconds; `1m30s` is ninety."""
    sop, _ = load_sop("steps:\n  - {id: a, type: exec, cmd: x, timeout: 10}\n  - {id: b, type: exec, cmd: x, timeout: 1m30s}\n")
    assert [s.timeout for s in sop.steps] == [10.0, 90.0]


def test_yaml_on_key_is_a_name_not_true() -> None:
    """A bare `on:` key (YAML 1.1 reads it as true) means `on` in a SOP."""
    sop, problems = load_sop("notify: {channel: ops, on: [success]}\nsteps:\n  - {id: a, type: wait, duration: 1}\n",
                             strict=True)
    assert sop.notify is not None and sop.notify.on == ("success",) and problems == []


def test_steps_without_needs_follow_the_step_before() -> None:
    """No needs: the step before; `needs: []`: none; handlers stay out of the flow."""
    sop, _ = load_sop(
        "steps:\n  - {id: a, type: exec, cmd: x, on_failure: {run: h}}\n  - {id: h, type: exec, cmd: y}\n"
        "  - {id: b, type: exec, cmd: z}\n  - {id: c, type: exec, cmd: z, needs: []}\n")
    assert {s.id: s.needs for s in sop.steps} == {"a": (), "h": (), "b": ("a",), "c": ()}
    assert sop.handlers == frozenset({"h"})
    assert plan(sop).waves == (("a", "c"), ("b",))


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sop"


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.glob("*.yaml") if p.name != "config.yaml"),
                         ids=lambda p: p.stem)
def test_examples_are_valid_in_strict_mode(path: Path) -> None:
    """Every example SOP in examples/sop validates strictly against the example config's names."""
    from smallyi.config import load_settings

    cfg = load_settings(EXAMPLES / "config.yaml")
    knowns = Knowns(ticket_templates=frozenset(cfg.tickets.templates), channels=frozenset(cfg.notify.channels),
                    environments=cfg.sop.environments)
    _, problems = load_sop(path.read_text(), source=path.name, strict=True, knowns=knowns)
    assert problems == []


def test_the_gitops_example_repository_sops_are_valid() -> None:
    """The SOPs of examples/gitops-repo/sops are the files a sync takes, and each validates strictly."""
    from smallyi.sop.gitsource import sop_files

    repo = EXAMPLES.parent / "gitops-repo"
    files = {p.relative_to(repo).as_posix(): p.read_text() for p in repo.rglob("*") if p.is_file()}
    mine = sop_files(files)
    assert sorted(mine) == ["sops/nginx_check.yaml"]
    for path, text in mine.items():
        _, problems = load_sop(text, source=path, strict=True, knowns=Knowns(sops=frozenset({"nginx_check"})))
        assert problems == []
