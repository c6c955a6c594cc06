"""A fast path past Typer for commands run often (``small-yi run``): parse simple options, call the command.

Typer builds a pydantic ``TypeAdapter`` for every option of the invoked command (importing pydantic and
generating a schema each), which costs a quarter of a second of CPU before ``run`` does anything. This
reads the command's own Typer declarations (the ``Annotated[..., typer.Option(...)]`` parameters), parses
``argv`` the way Click would for the plain cases, and calls the command function with the same values
Typer would pass. Anything it is not sure about — ``--help``, an unknown or malformed option, a value
that needs Typer's checking or error message, an option kind it does not know — returns ``None`` and the
caller hands ``argv`` to Typer as before, so help, errors and every feature stay Typer's.
``tests/unit/test_cli_fastpath.py`` checks that both give the same values.
"""

from __future__ import annotations

import enum
import errno
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

_INT = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class _Opt:
    param: str
    kind: str  # "str", "int", "flag", "list", "enum"
    required: bool
    default: Any
    envvar: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    enum_type: type[enum.Enum] | None = None


class _Capture:
    """Stands in for the Typer app: ``register(capture)`` hands over the command function."""

    def __init__(self) -> None:
        self.commands: dict[str, Callable[..., Any]] = {}

    def command(self, name: str | None = None, **_: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.commands[name or fn.__name__.replace("_", "-")] = fn
            return fn
        return deco


def command(register: Callable[[Any], None], name: str) -> Callable[..., Any] | None:
    """The function ``register`` declares as command ``name`` (None if it declares no such command)."""
    cap = _Capture()
    register(cap)
    return cap.commands.get(name)


def options(fn: Callable[..., Any]) -> dict[str, _Opt] | None:
    """Option spelling -> what it sets, from the function's Typer declarations; None if one is not plain."""
    from typer.models import OptionInfo

    hints = typing.get_type_hints(fn, include_extras=True)
    table: dict[str, _Opt] = {}
    for name, p in inspect.signature(fn).parameters.items():
        ann = hints.get(name)
        meta = getattr(ann, "__metadata__", None)
        if not meta or len(meta) != 1 or type(meta[0]) is not OptionInfo:
            return None
        info: OptionInfo = meta[0]
        if (info.callback or info.parser or info.is_eager or info.count or info.prompt or info.default_factory
                or info.confirmation_prompt or not info.expose_value):
            return None
        first = info.default if isinstance(info.default, str) and info.default.startswith("-") else None
        if not (first or info.default is ... or info.default is None):
            return None  # a default given inside Annotated: Typer's rules, not ours
        decls = ([first] if first else []) + list(info.param_decls or ())
        if not decls:
            decls = ["--" + name.replace("_", "-")]
        if any("/" in d or not d.startswith("-") for d in decls):
            return None
        kind, enum_type = _kind(getattr(ann, "__origin__", None))
        if kind is None:
            return None
        if (info.min is not None or info.max is not None) and kind != "int":
            return None
        if info.envvar is not None and (not isinstance(info.envvar, str) or kind != "str"):
            return None
        required = p.default is inspect.Parameter.empty
        if kind == "flag" and (required or p.default is not False):
            return None
        if not all(m is None or isinstance(m, int) for m in (info.min, info.max)):
            return None
        opt = _Opt(name, kind, required, None if required else p.default, info.envvar,
                   cast(int | None, info.min), cast(int | None, info.max), enum_type)
        for d in decls:
            table[d] = opt
    return table


def _kind(tp: Any) -> tuple[str | None, type[enum.Enum] | None]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        tp = next(a for a in args if a is not type(None))
    if tp is str:
        return "str", None
    if tp is int:
        return "int", None
    if tp is bool:
        return "flag", None
    if typing.get_origin(tp) is list and typing.get_args(tp) == (str,):
        return "list", None
    if isinstance(tp, type) and issubclass(tp, enum.Enum) and all(isinstance(m.value, str) for m in tp):
        return "enum", tp
    return None, None


def parse(table: dict[str, _Opt], args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments Typer would call the command with; None if Typer should decide."""
    given: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or token in ("-", "--"):
            return None  # arguments, or the end of options: not ours
        if token.startswith("--"):
            spelling, eq, value = token.partition("=")
        elif len(token) == 2:
            spelling, eq, value = token, "", ""
        else:
            return None  # -gweb or -qo: Click's short-option forms, left to it
        opt = table.get(spelling)
        if opt is None:
            return None  # --help, a typo, an option this path does not know
        if opt.kind == "flag":
            if eq:
                return None
            given[opt.param] = True
        else:
            if not eq:
                i += 1
                if i >= len(args) or (args[i].startswith("-") and args[i] != "-"):
                    return None  # missing value, or one Click may read differently
                value = args[i]
            converted = _convert(opt, value)
            if converted is None:
                return None
            if opt.kind == "list":
                given.setdefault(opt.param, []).append(converted)
            else:
                given[opt.param] = converted
        i += 1
    out: dict[str, Any] = {}
    for opt in {o.param: o for o in table.values()}.values():
        if opt.param in given:
            out[opt.param] = given[opt.param]
        elif opt.envvar is not None and opt.envvar in os.environ:
            env = os.environ[opt.envvar]
            if not env:
                return None  # Click's handling of an empty variable: let it decide
            out[opt.param] = env
        elif opt.required:
            return None  # Typer says what is missing
        else:
            out[opt.param] = opt.default
    return out


def _convert(opt: _Opt, value: str) -> Any:
    if opt.kind in ("str", "list"):
        return value
    if opt.kind == "int":
        if not _INT.fullmatch(value):
            return None
        n = int(value)
        if (opt.minimum is not None and n < opt.minimum) or (opt.maximum is not None and n > opt.maximum):
            return None
        return n
    assert opt.enum_type is not None
    try:
        return opt.enum_type(value)
    except ValueError:
        return None


def call(register: Callable[[Any], None], name: str, args: list[str], *, prog: str = "small-yi") -> None:
    """Run command ``name`` from ``register`` on ``args`` and exit, or return if Typer should handle them.

    Exits as Typer's standalone mode does: ``typer.Exit(n)`` is exit status n, Ctrl-C outside the
    command's own handling is status 130, an abort is "Aborted", a closed stdout pipe is status 1.
    """
    if f"_{prog.replace('-', '_').upper()}_COMPLETE" in os.environ:
        return  # shell completion: Typer's
    fn = command(register, name)
    table = options(fn) if fn is not None else None
    kwargs = parse(table, args) if table is not None else None
    if fn is None or kwargs is None:
        return
    import typer

    try:
        try:
            fn(**kwargs)
        except EOFError as exc:
            sys.stderr.write("\n")
            raise typer.Abort() from exc
        except KeyboardInterrupt as exc:
            raise typer.Exit(130) from exc
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            from smallyi import compat

            compat.pacify_closed_pipes()
            sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        from smallyi import compat

        compat.print_aborted()
        sys.exit(1)
    sys.exit(0)
