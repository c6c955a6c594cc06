"""`small-yi sop ...` and `small-yi schedules ...` as a user types them: output, JSON and exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import cli, write_config

GOOD = """\
name: greet
vars: {who: world}
environments:
  prod: {REGION: cn-north}
steps:
  - id: hello
    type: exec
    cmd: "echo hello {{ .vars.who }} in {{ .env.REGION }}"
  - id: a
    type: exec
    needs: [hello]
    cmd: "echo a"
  - id: b
    type: exec
    needs: [hello]
    cmd: "echo b"
"""
BAD = """\
steps:
  - id: a
    type: exec
    cmd: "echo {{ .vars.nope }}"
    timeout: 10x
    colour: red
  - id: b
    type: if
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    return write_config(tmp_path)


def test_validate_reports_every_error_with_line_step_and_field(cfg: Path) -> None:
    """validate prints FILE:LINE: step: field: message for each problem and exits 1; --strict-mode adds the rest."""
    bad = str(cfg.parent / "bad.yaml")
    r = cli("sop", "validate", bad, config=cfg)
    assert r.returncode == 1
    assert f"{bad}:5: step a: timeout: '10x' is not a duration" in r.stdout
    assert f"{bad}:7: step b: condition: type if needs field 'condition'" in r.stdout
    assert "warning: unknown field 'colour'" in r.stdout
    strict = cli("sop", "validate", bad, "--strict-mode", "--output", "json", config=cfg)
    doc = json.loads(strict.stdout)
    assert strict.returncode == 1 and doc["valid"] is False
    assert {(p["line"], p["field"]) for p in doc["problems"] if p["severity"] == "error"} >= {
        (4, "cmd"), (5, "timeout"), (6, "colour"), (7, "condition")}
    good = cli("sop", "validate", str(cfg.parent / "good.yaml"), "--strict-mode", config=cfg)
    assert good.returncode == 0 and "valid (3 steps in 2 wave(s))" in good.stdout


def test_validate_without_a_config_and_missing_files(tmp_path: Path) -> None:
    """validate needs no config; a missing file is exit 2 naming it."""
    (tmp_path / "x.yaml").write_text(GOOD)
    assert cli("sop", "validate", str(tmp_path / "x.yaml"), cwd=tmp_path).returncode == 0
    r = cli("sop", "validate", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert r.returncode == 2 and "nope.yaml: no such file" in r.stderr


def test_plan_prints_the_waves(cfg: Path) -> None:
    """plan shows each wave and what runs in parallel; JSON has waves and needs."""
    r = cli("sop", "plan", str(cfg.parent / "good.yaml"), config=cfg)
    assert r.returncode == 0
    assert "wave 1" in r.stdout and "wave 2 (in parallel)" in r.stdout and "after hello" in r.stdout
    doc = json.loads(cli("sop", "plan", str(cfg.parent / "good.yaml"), "--output", "json", config=cfg).stdout)
    assert doc["waves"] == [["hello"], ["a", "b"]] and doc["needs"]["a"] == ["hello"]


def test_run_with_environment_and_vars(cfg: Path) -> None:
    """run prints [step][host] lines and a summary; --inject-env and --var reach the command; exit 0."""
    r = cli("sop", "run", str(cfg.parent / "good.yaml"), "--hosts", "local", "--inject-env", "prod",
            "--var", "who=ops team", config=cfg)
    assert r.returncode == 0, r.stderr
    assert "[hello][local] hello ops team in cn-north" in r.stdout
    assert "[a][local] a" in r.stdout and "SOP run 1 success" in r.stdout
    assert "▶ hello" in r.stderr and "✓ hello success" in r.stderr


def test_run_failures_and_bad_flags(cfg: Path) -> None:
    """A failing run exits 1; unknown environments, undeclared vars and a missing target exit 2 with the reason."""
    failing = cfg.parent / "fail.yaml"
    failing.write_text("steps:\n  - {id: x, type: exec, cmd: 'exit 3'}\n")
    r = cli("sop", "run", str(failing), "--hosts", "local", config=cfg)
    assert r.returncode == 1 and "exit status 3" in r.stdout
    good = str(cfg.parent / "good.yaml")
    r = cli("sop", "run", good, "--hosts", "local", "--inject-env", "qa", config=cfg)
    assert r.returncode == 2 and "no environment 'qa' (prod)" in r.stderr
    r = cli("sop", "run", good, "--hosts", "local", "--var", "whom=x", config=cfg)
    assert r.returncode == 2 and "'whom' not declared" in r.stderr
    r = cli("sop", "run", good, "--var", "novalue", config=cfg)
    assert r.returncode == 2 and "NAME=VALUE" in r.stderr
    r = cli("sop", "run", good, config=cfg)
    assert r.returncode == 1 and "has no target" in r.stdout
    r = cli("sop", "run", str(cfg.parent / "bad.yaml"), "--hosts", "local", config=cfg)
    assert r.returncode == 1 and "timeout" in r.stderr


def test_dry_run_runs_nothing(cfg: Path) -> None:
    """--dry-run shows hosts and commands per wave and records no run."""
    r = cli("sop", "run", str(cfg.parent / "good.yaml"), "--group", "local", "--dry-run", "--inject-env", "prod",
            config=cfg)
    assert r.returncode == 0, r.stderr
    assert "dry run" in r.stdout and "on: local" in r.stdout
    assert "command: export SY_V_who='world' SY_E_REGION='cn-north'; readonly SY_V_who SY_E_REGION\n" \
        "      echo hello \"${SY_V_who}\" in \"${SY_E_REGION}\"" in r.stdout
    assert json.loads(cli("sop", "runs", "--output", "json", config=cfg).stdout)["total"] == 0


def test_store_list_run_stored_and_show(cfg: Path) -> None:
    """save stores a version; run --sop runs it; runs and show list what happened."""
    assert cli("sop", "save", "greet", str(cfg.parent / "good.yaml"), config=cfg).returncode == 0
    r = cli("sop", "save", "greet", str(cfg.parent / "good.yaml"), config=cfg)
    assert "version 2" in r.stdout
    assert "greet  v2" in cli("sop", "list", config=cfg).stdout
    assert cli("sop", "run", "--sop", "greet", "--hosts", "local", "--inject-env", "prod", config=cfg).returncode == 0
    runs = json.loads(cli("sop", "runs", "--output", "json", config=cfg).stdout)["items"]
    assert runs[0]["sop"] == "greet" and runs[0]["sop_version"] == 2 and runs[0]["status"] == "success"
    shown = json.loads(cli("sop", "show", str(runs[0]["id"]), "--output", "json", config=cfg).stdout)
    assert [s["id"] for s in shown["steps"]] == ["hello", "a", "b"]
    assert cli("sop", "run", "--sop", "nope", config=cfg).returncode == 2


def test_schedules_cli(cfg: Path) -> None:
    """schedules add/list/show/pause/resume/rm, with the bad field named on a mistake."""
    r = cli("schedules", "add", "uptime", "--cron", "*/10 * * * *", "--cmd", "uptime", "--hosts", "local",
            "--timezone", "Asia/Shanghai", "--missed", "run_once", "--notify", "ops", config=cfg)
    assert r.returncode == 0, r.stderr
    assert "uptime: */10 * * * * (Asia/Shanghai)" in r.stdout and "missed: run_once" in r.stdout
    bad = cli("schedules", "add", "x", "--cron", "* * *", "--cmd", "uptime", "--hosts", "local", config=cfg)
    assert bad.returncode == 2 and "has 3 field(s)" in bad.stderr
    assert cli("schedules", "add", "y", "--cron", "@daily", config=cfg).returncode == 2
    assert "paused" in cli("schedules", "pause", "uptime", config=cfg).stdout
    doc = json.loads(cli("schedules", "show", "uptime", "--output", "json", config=cfg).stdout)
    assert doc["enabled"] is False and doc["next_slot"] is None and doc["fires"] == []
    assert doc["notify"] == {"channels": ["ops"], "on": ["failure"]}
    assert cli("schedules", "resume", "uptime", config=cfg).returncode == 0
    assert json.loads(cli("schedules", "list", "--output", "json", config=cfg).stdout)["items"][0]["enabled"]
    assert cli("schedules", "rm", "uptime", config=cfg).returncode == 0
    assert cli("schedules", "show", "uptime", config=cfg).returncode == 2
