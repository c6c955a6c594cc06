"""The CLI fast path (``cli/fastpath.py``) calls a command with exactly the values Typer would, or not at all."""

from __future__ import annotations

import functools
import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from smallyi.cli import fastpath, main

ARGVS_BOTH_ACCEPT = [
    ["--cmd", "uptime", "-g", "web"],
    ["--cmd=uptime -a", "--hosts", "a,b", "--quiet"],
    ["-g", "web", "--cmd", "df -h", "-l", "env=prod", "--label", "role=db", "-q", "-o", "json"],
    ["--cmd", "x", "--timeout", "1m30s", "--concurrency", "50", "--rate", "20/s", "--output=text"],
    ["--cmd", "x", "--group", "a", "--group", "b", "-c", "/etc/small-yi.yaml"],
    ["--cmd", "x", "--server", "http://s:8080", "--token", "t0k"],
    ["--cmd", "", "--hosts", "a"],
    ["--cmd", "echo ok", "--hosts", "a", "--concurrency", "1"],
]

ARGVS_LEFT_TO_TYPER = [
    ["--help"],
    ["--cmd"],
    [],
    ["--hosts", "a"],  # --cmd is required: Typer says so
    ["--cmd", "x", "--concurrency", "0"],
    ["--cmd", "x", "--concurrency", "ten"],
    ["--cmd", "x", "-o", "yaml"],
    ["--cmd", "x", "-gweb"],
    ["--cmd", "x", "-qg", "web"],
    ["--cmd", "x", "stray"],
    ["--cmd", "x", "--no-such-option"],
    ["--cmd", "x", "--quiet=yes"],
    ["--cmd", "-x"],
    ["--cmd", "x", "--"],
]


def _run_command() -> Any:
    from smallyi.cli import run

    fn = fastpath.command(run.register, "run")
    assert fn is not None
    return fn


def _typer_values(fn: Any, argv: list[str]) -> dict[str, Any] | None:
    """What Typer calls ``fn`` with for ``argv`` (None if it refuses them)."""
    seen: dict[str, Any] = {}

    @functools.wraps(fn)
    def record(**kwargs: Any) -> None:
        seen.update(kwargs)

    app = typer.Typer()
    app.command(name="run")(record)

    @app.callback()
    def _root() -> None:
        pass

    result = CliRunner().invoke(app, ["run", *argv])
    return seen if result.exit_code == 0 and seen else None


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMALLYI_SERVER", "SMALLYI_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_every_option_of_run_is_one_the_fast_path_knows() -> None:
    """A new option of a kind the fast path does not read would silently send every `run` back through Typer."""
    table = fastpath.options(_run_command())
    assert table is not None
    assert "--cmd" in table and "-g" in table and "--quiet" in table


@pytest.mark.parametrize("argv", ARGVS_BOTH_ACCEPT)
def test_the_fast_path_passes_what_typer_passes(argv: list[str]) -> None:
    """Same argv, same keyword values (types included: the enum, ints, the label list)."""
    fn = _run_command()
    table = fastpath.options(fn)
    assert table is not None
    fast = fastpath.parse(table, argv)
    assert fast is not None
    assert fast == _typer_values(fn, argv)
    assert {k: type(v) for k, v in fast.items()} == {k: type(v) for k, v in (_typer_values(fn, argv) or {}).items()}


@pytest.mark.parametrize("argv", ARGVS_LEFT_TO_TYPER)
def test_anything_unusual_is_left_to_typer(argv: list[str]) -> None:
    """Help, errors and Click's rarer forms are not parsed here: Typer keeps its messages and rules."""
    table = fastpath.options(_run_command())
    assert table is not None
    assert fastpath.parse(table, argv) is None


def test_environment_variables_are_read_like_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    """--server and --token come from SMALLYI_SERVER/SMALLYI_TOKEN when not given; an empty one is Typer's call."""
    fn = _run_command()
    table = fastpath.options(fn)
    assert table is not None
    monkeypatch.setenv("SMALLYI_SERVER", "http://s:1")
    monkeypatch.setenv("SMALLYI_TOKEN", "tok")
    argv = ["--cmd", "x", "-g", "g"]
    assert fastpath.parse(table, argv) == _typer_values(fn, argv)
    assert fastpath.parse(table, [*argv, "--token", "other"]) == _typer_values(fn, [*argv, "--token", "other"])
    monkeypatch.setenv("SMALLYI_TOKEN", "")
    assert fastpath.parse(table, argv) is None


def test_main_takes_the_fast_path_for_run_and_typer_for_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """`small-yi run --cmd ...` runs without Typer's parser; `small-yi run --help` still goes to Typer."""
    from smallyi.cli import run

    ran: list[str] = []
    typer_used: list[list[str]] = []
    monkeypatch.setattr(run, "settings", lambda config: None)
    monkeypatch.setattr(run, "run", lambda fn: ran.append("run") or {"success": 1})
    monkeypatch.setattr(main, "typer_main", lambda: typer_used.append(sys.argv[1:]))
    monkeypatch.setattr(main, "_register", lambda argv: None)
    monkeypatch.setattr(sys, "argv", ["small-yi", "run", "--cmd", "uptime", "--hosts", "a"])
    with pytest.raises(SystemExit) as exc:
        main.main()
    assert exc.value.code == 0 and ran == ["run"] and typer_used == []
    monkeypatch.setattr(sys, "argv", ["small-yi", "run", "--help"])
    main.main()
    assert typer_used == [["run", "--help"]]
