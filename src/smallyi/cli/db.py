"""``small-yi db upgrade``: bring the database schema to this version (serve also does it on start)."""

from __future__ import annotations

import typer

from smallyi.cli.common import ConfigOpt, run, settings
from smallyi.cli.helptext import typer_app


def register(app: typer.Typer) -> None:
    db_app = typer_app(help="Database schema.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command()
    def upgrade(config: ConfigOpt = None) -> None:
        """Migrate the configured database to the newest schema."""
        from smallyi.config import redact_url
        from smallyi.storage.db import upgrade as do_upgrade

        s = settings(config)
        rev = run(lambda: do_upgrade(s))
        typer.echo(f"database {redact_url(s.database.source)} is at schema revision {rev}")
