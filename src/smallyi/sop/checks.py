"""Field-level checks shared by the validator: each takes a value and says what is wrong. Pure."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from smallyi.durations import parse_duration
from smallyi.errors import InputError
from smallyi.policy import command_text

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: an interpreter: a program and simple flags (``bash``, ``/usr/bin/env python3``, ``bash -e``)
INTERPRETER_RE = re.compile(r"^[A-Za-z0-9_./+-]+( [A-Za-z0-9_./+=-]+)*$")
OWNER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
MAX_RETRIES = 20


class Bad(Exception):
    """A value is wrong; the message says why (the caller adds where)."""


def kind(v: Any) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def text(v: Any, *, empty: bool = False) -> str:
    if not isinstance(v, str):
        raise Bad(f"expected text, got {kind(v)}")
    if not empty and not v.strip():
        raise Bad("must not be empty")
    return v


def command(v: Any, *, what: str = "the command") -> str:
    """Text that becomes (part of) a shell command: no NUL byte, nothing that is not UTF-8."""
    value = text(v)
    why = command_text.problem(value, what)
    if why is not None:
        raise Bad(why)
    return value


def text_list(v: Any, *, allow_string: bool = True) -> list[str]:
    """A list of texts; a single text is a list of one (or comma-separated, for host names)."""
    if isinstance(v, str) and allow_string:
        return [p.strip() for p in v.split(",") if p.strip()] if "{{" not in v else [v]
    if not isinstance(v, list):
        raise Bad(f"expected a list, got {kind(v)}")
    for i, item in enumerate(v):
        if not isinstance(item, str) or not item.strip():
            raise Bad(f"item {i + 1} must be non-empty text, got {kind(item)}")
    return list(v)


def text_map(v: Any) -> dict[str, str]:
    if not isinstance(v, dict):
        raise Bad(f"expected a mapping, got {kind(v)}")
    out = {}
    for k, val in v.items():
        if isinstance(val, bool) or not isinstance(val, str | int | float):
            raise Bad(f"value of {k!r} must be text, got {kind(val)}")
        out[k] = val if isinstance(val, str) else str(val)
    return out


def duration(v: Any, *, positive: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise Bad(f"expected a duration (seconds, or Go style such as 10s, 1m30s), got {kind(v)}")
    try:
        seconds = parse_duration(v)
    except InputError as exc:
        raise Bad(exc.message.removeprefix("duration: ")) from None
    if positive and seconds <= 0:
        raise Bad("must be more than zero")
    return seconds


def integer(v: Any, *, low: int, high: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise Bad(f"expected a whole number, got {kind(v)}")
    if not low <= v <= high:
        raise Bad(f"must be between {low} and {high}, got {v}")
    return v


def mode(v: Any) -> int:
    """``0644`` (YAML reads a leading-zero number as octal only in YAML 1.1), ``"0644"`` or ``420``."""
    if isinstance(v, str) and re.fullmatch(r"0?[0-7]{3,4}", v.strip()):
        return int(v.strip(), 8)
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0o7777:
        return v
    raise Bad(f"expected a permission mode such as \"0644\", got {v!r}")


def abs_path(v: Any) -> str:
    path = text(v)
    if "{{" in path:
        return path
    if not path.startswith("/"):
        raise Bad(f"{path!r} is not absolute (start it with '/')")
    if any(c in path for c in "\0\n\r") or posixpath.normpath(path) != path:
        raise Bad(f"{path!r} is not in normal form (no '..', '.', '//', trailing '/', newlines)")
    return path


def owner(v: Any) -> str:
    value = text(v)
    if not OWNER_RE.match(value):
        raise Bad(f"{value!r} is not USER or USER:GROUP")
    return value


def status_codes(v: Any) -> tuple[int, ...]:
    items = v if isinstance(v, list) else [v]
    out = []
    for x in items:
        if isinstance(x, bool) or not isinstance(x, int) or not 100 <= x <= 599:
            raise Bad(f"expected HTTP status codes (100-599), got {x!r}")
        out.append(x)
    return tuple(out)


def suggest(word: str, choices: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
