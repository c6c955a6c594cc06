"""Every command's help is plain text a person reads: option values named (``--group GROUP``), never Python
types (``<str>``), no Markdown or Rich markup left raw; and shell completion works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from smallyi.cli import helptext, main

SMALL_YI = str(Path(sys.executable).with_name("small-yi"))


def _commands(cmd: Any, ctx: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    yield path, cmd.get_help(ctx)
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, sub.context_class(sub, info_name=name, parent=ctx), (*path, name))


def _all_help() -> list[tuple[tuple[str, ...], str]]:
    main._register(None)
    root = typer.main.get_command(main.app)
    helptext.tidy(root)
    return list(_commands(root, root.context_class(root, info_name="small-yi")))


def test_help_names_values_not_python_types() -> None:
    """No ``<str>``/``<bool>``/``<list[str]>`` in any command's help; value options carry a metavar."""
    pages = _all_help()
    assert len(pages) > 40  # every command and group was walked
    for path, text in pages:
        assert not re.search(r"<(str|int|bool|float|list\[\w+\]|[\w ]+ range)>", text), (path, text)
    run = dict(pages)[("run",)]
    assert "--group GROUP" in run and "--timeout DURATION" in run and "-o, --output [text|json|ndjson]" in run


def test_help_has_no_raw_markup() -> None:
    """Docstrings' `code` spans become quotes; no Rich markup tags or Markdown backticks reach the page."""
    for path, text in _all_help():
        assert "`" not in text, (path, text)
        assert not re.search(r"\[/?(bold|dim|red|green|yellow|b|i|cyan|magenta)\]", text), (path, text)


def test_bash_completion_completes_commands_subcommands_and_options() -> None:
    """The script --show-completion prints calls small-yi back; the answers name real commands and options."""
    script = subprocess.run([SMALL_YI, "--show-completion", "bash"], capture_output=True, text=True, check=True)
    assert "_SMALL_YI_COMPLETE=complete_bash" in script.stdout

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_SMALL_YI_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - 1)}
        return subprocess.run([SMALL_YI], env=env, capture_output=True, text=True, check=True).stdout.split()

    assert complete("small-yi hostk") == ["hostkeys"]
    assert "scan" in complete("small-yi hostkeys s")
    assert complete("small-yi run --gro") == ["--group"]
