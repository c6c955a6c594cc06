"""The ``small-yi`` entry point: registers every command group."""

from __future__ import annotations

import typer

from smallyi import __version__
from smallyi.cli import helptext
from smallyi.cli.helptext import typer_app

app = typer_app(
    name="small-yi",
    help="small-yi: run commands on your fleet over SSH, live and archived.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
)


#: every command module, in help order, and the commands each registers. ``small-yi X`` imports only
#: X's module: a module's imports (SQLAlchemy, asyncssh, the API's FastAPI...) cost start-up time
#: that a cold ``small-yi run`` pays in full. Anything not listed here loads every module.
MODULES: dict[str, tuple[str, ...]] = {
    "serve": ("serve", "init"),
    "hashpwd": ("hashpwd",),
    "db": ("db",),
    "hosts": ("hosts",),
    "run": ("run",),
    "tasks": ("tasks", "results"),
    "logs": ("logs",),
    "audit": ("audit",),
    "secrets": ("secrets",),
    "hostkeys": ("hostkeys",),
    "accounts": ("tokens", "users"),
    "sync": ("sync",),
    "sop": ("sop", "schedules"),
}


def _register(argv: list[str] | None = None) -> None:
    """Register the command ``argv`` names (its module only), or every command (help, unknown names)."""
    import importlib

    wanted = next((a for a in argv or [] if not a.startswith("-")), None)
    modules = [m for m, commands in MODULES.items() if wanted in commands] or list(MODULES)
    for name in modules:
        importlib.import_module(f"smallyi.cli.{name}").register(app)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="print the version and exit")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


#: commands run often enough that their start-up matters: ``cli/fastpath.py`` calls them without Typer's
#: parsing when their options are plain (anything else, ``--help`` included, still goes through Typer)
FAST = ("run",)


def main() -> None:
    import sys

    argv = sys.argv[1:]
    if argv and argv[0] in FAST:
        import importlib

        from smallyi.cli import fastpath

        module = next(m for m, commands in MODULES.items() if argv[0] in commands)
        fastpath.call(importlib.import_module(f"smallyi.cli.{module}").register, argv[0], argv[1:])
    _register(argv)
    typer_main()


def typer_main() -> None:
    """What ``app()`` does, with the command tree's help tidied (``cli/helptext.py``) before it runs."""
    command = typer.main.get_command(app)
    helptext.tidy(command)
    command(prog_name="small-yi")
