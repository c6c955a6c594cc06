"""The ``small-yi`` entry point: registers every command group."""

from __future__ import annotations

import typer

from smallyi import __version__

app = typer.Typer(
    name="small-yi",
    help="small-yi: run commands on your fleet over SSH, live and archived.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from smallyi.cli import audit, db, hashpwd, hostkeys, hosts, logs, run, secrets, serve, sync, tasks

    serve.register(app)
    hashpwd.register(app)
    db.register(app)
    hosts.register(app)
    run.register(app)
    tasks.register(app)
    logs.register(app)
    audit.register(app)
    secrets.register(app)
    hostkeys.register(app)
    sync.register(app)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="print the version and exit")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    _register()
    app()
