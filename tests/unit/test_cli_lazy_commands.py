"""``small-yi X`` imports only the module of command X (start-up time), and still finds every command."""

from __future__ import annotations

import importlib

import pytest
import typer

from smallyi.cli import main


def _names(module: str) -> set[str]:
    app = typer.Typer()
    importlib.import_module(f"smallyi.cli.{module}").register(app)
    return {c.name or c.callback.__name__ for c in app.registered_commands if c.callback} | {
        g.name or (g.typer_instance.info.name if g.typer_instance else "") for g in app.registered_groups
    }


def test_every_module_registers_exactly_the_commands_listed_for_it() -> None:
    """MODULES names each module's commands, so a command is never looked for in the wrong module."""
    for module, commands in main.MODULES.items():
        assert _names(module) == set(commands), module


def test_a_command_loads_its_module_only_and_unknown_ones_load_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` imports cli.run alone; help or an unknown word registers every module."""
    loaded: list[str] = []
    class Spy:
        def register(self, app: typer.Typer) -> None:
            pass

    def fake(name: str) -> Spy:
        loaded.append(name.rsplit(".", 1)[-1])
        return Spy()

    monkeypatch.setattr(importlib, "import_module", fake)
    main._register(["run", "--cmd", "uptime"])
    assert loaded == ["run"]
    loaded.clear()
    main._register(["results", "--host", "a"])
    assert loaded == ["tasks"]
    loaded.clear()
    main._register(["--help"])
    assert loaded == list(main.MODULES)
    loaded.clear()
    main._register(["no-such-command"])
    assert loaded == list(main.MODULES)
