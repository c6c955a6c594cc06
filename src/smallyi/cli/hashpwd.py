"""``small-yi hashpwd``: a bcrypt hash for the config's ``password_hash``."""

from __future__ import annotations

import getpass
import sys

import typer

from smallyi.cli.common import ConfigOpt, fail


def register(app: typer.Typer) -> None:
    @app.command()
    def hashpwd(config: ConfigOpt = None) -> None:
        """Prompt for a password (twice) and print its bcrypt hash; piped, read one line from stdin."""
        from smallyi.auth.passwords import hash_password
        from smallyi.errors import InputError

        if sys.stdin.isatty():
            first = getpass.getpass("Password: ")
            if getpass.getpass("Again: ") != first:
                fail("the two passwords differ; nothing was printed")
        else:
            line = sys.stdin.readline()
            if not line:
                fail("no password on standard input")
            first = line.rstrip("\r\n")
        try:
            typer.echo(hash_password(first))
        except InputError as exc:
            fail(exc.message)
