"""``small-yi hosts``: list, add, import (in progress)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    hosts_app = typer.Typer(help="Hosts and groups of the inventory.", no_args_is_help=True)
    app.add_typer(hosts_app, name="hosts")
