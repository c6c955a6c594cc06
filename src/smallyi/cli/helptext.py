"""Help that reads as plain text: ``--group GROUP``, not Typer's ``--group <str>``; no Markdown left in it.

Typer's Rich help shows each option's Python type (``<str>``, ``<list[str]>``, ``<bool>``) and leaves
Markdown backticks raw; its plain (Click) layout honours metavars. Every command is built with
``rich_markup_mode=None`` (:func:`typer_app`) and, once built, :func:`tidy` names each value option's
metavar after the option and turns ``code`` spans into quotes. Only public Click attributes are set.
"""

from __future__ import annotations

import re
from typing import Any

import typer

from smallyi import compat

_CODE = re.compile(r"``([^`]+)``|`([^`]+)`")
#: metavars that say more than the option's name
METAVARS = {"timeout": "DURATION", "since": "WHEN", "until": "WHEN", "config": "FILE", "server": "URL",
            "token": "TOKEN", "label": "KEY=VALUE", "hosts": "NAME[,NAME]", "cmd": "COMMAND",
            "concurrency": "N", "limit": "N", "notify": "CHANNEL[,CHANNEL]", "rate": "N/s", "listen": "HOST:PORT"}


def typer_app(**kwargs: Any) -> typer.Typer:
    """A command group with plain help (see the module docstring)."""
    return typer.Typer(rich_markup_mode=None, **kwargs)


def tidy(command: Any) -> None:
    """Metavars and quoted code spans for ``command`` and everything under it (a Click command tree)."""
    command.help = _quote(command.help)
    command.short_help = _quote(getattr(command, "short_help", None))
    for param in getattr(command, "params", ()):
        param.help = _quote(getattr(param, "help", None))
        if getattr(param, "metavar", None) is None and not getattr(param, "is_flag", False) \
                and getattr(param, "param_type_name", "") == "option":
            choices = _choices(param)
            name = param.name or "value"
            param.metavar = f"[{'|'.join(str(getattr(c, 'value', c)) for c in choices)}]" if choices \
                else METAVARS.get(name, name.upper())
        elif getattr(param, "param_type_name", "") == "argument":
            if getattr(param, "metavar", None) is None:
                param.metavar = (param.name or "value").upper()
            compat.hide_argument_type(param)  # Typer would list it as "NAME <str>"
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


def _choices(param: Any) -> list[Any] | None:
    """An option's choices: Typer >= 0.2x describes its types itself (``type_descriptor``), Click in ``type``."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        return list(desc.choices or ()) if getattr(desc, "is_choice", False) else None
    choices = getattr(getattr(param, "type", None), "choices", None)
    return list(choices) if choices else None


def _quote(text: str | None) -> str | None:
    if not text:
        return text
    def quote(m: re.Match[str]) -> str:
        code = m.group(1) or m.group(2)
        return f'"{code}"' if "'" in code else f"'{code}'"

    return _CODE.sub(quote, text)
