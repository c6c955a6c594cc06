"""Go-style durations (``10s``, ``1m30s``, ``250ms``, ``2h``): the original's format, parsed purely; and
the config's other units: rates (``20/s``) and sizes (``32MiB``)."""

from __future__ import annotations

import math
import re

from smallyi.errors import InputError

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ns|us|µs|ms|s|m|h)")
_BARE = re.compile(_NUMBER)


def parse_duration(text: str | int | float, *, field: str = "duration") -> float:
    """Seconds from a Go duration string; a bare number means seconds (as the original's SOP examples).

    Raises InputError naming ``field`` when the text is not a duration.
    """
    if isinstance(text, bool):
        raise InputError(f"{field}: expected a duration such as 10s, got {text!r}", field=field)
    if isinstance(text, int | float):
        if not math.isfinite(text) or text < 0:
            raise InputError(f"{field}: duration must be a finite number of seconds >= 0, got {text}", field=field)
        return float(text)
    s = text.strip()
    if s == "":
        raise InputError(f"{field}: empty duration; write one such as 10s or 1m30s", field=field)
    if _BARE.fullmatch(s):
        return float(s)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        _bad(field, text)
    return total


#: why a command timeout of 0 is refused, and what to do instead
NO_ZERO_TIMEOUT = ("must be more than 0s: small-yi has no unlimited command timeout (0 does not mean none); "
                   "for a long command give a long one, e.g. 6h")


def check_timeout(seconds: float, *, field: str = "timeout") -> float:
    """``seconds`` as a command timeout: more than zero, else InputError naming ``field``.

    The engine bounds every command; a 0 that silently meant "no limit" let a task run forever.
    """
    if not seconds > 0:
        raise InputError(f"{field}: {NO_ZERO_TIMEOUT}", field=field)
    return seconds


def parse_timeout(text: str | int | float, *, field: str = "timeout") -> float:
    """A command timeout from a Go duration or seconds (:func:`parse_duration`), more than zero."""
    return check_timeout(parse_duration(text, field=field), field=field)


def _bad(field: str, text: object) -> float:
    raise InputError(
        f"{field}: {text!r} is not a duration; use Go style such as 250ms, 10s, 1m30s or 2h", field=field
    )


def format_duration(seconds: float) -> str:
    """The shortest Go-style text for ``seconds`` (inverse of parse_duration for whole units)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = [], seconds
    for unit, size in (("h", 3600), ("m", 60)):
        n = int(rest // size)
        if n:
            out.append(f"{n}{unit}")
            rest -= n * size
    if rest or not out:
        out.append(f"{rest:g}s")
    return "".join(out)


def parse_rate(value: str | float | None) -> float:
    """``"20/s"``, ``"600/m"`` or a number of connections per second; 0 or None is unlimited."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, int | float):
        rate = float(value)
    else:
        text = value.strip()
        num, _, per = text.partition("/")
        scale = {"": 1.0, "s": 1.0, "m": 1 / 60, "h": 1 / 3600}.get(per.strip())
        rate = float(num) * scale if scale is not None and _BARE.fullmatch(num.strip()) else -1.0
    if not math.isfinite(rate) or rate < 0:
        raise InputError(f"rate: {value!r} is not a rate such as 20/s", field="rate")
    return rate


_SIZE_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_size(value: str | int, *, field: str = "size") -> int:
    """Bytes from ``32MiB``, ``512KiB``, ``10MB`` (powers of 1000), ``4096`` or ``4096B``.

    Raises InputError naming ``field`` when the value is not a size.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{field}: expected a size such as 32MiB, got {value!r}", field=field)
    if isinstance(value, int):
        if value < 0:
            raise InputError(f"{field}: a size must not be negative, got {value}", field=field)
        return value
    m = _SIZE.fullmatch(value.strip().lower())
    if m is None or m.group(2) not in _SIZE_UNITS:
        raise InputError(
            f"{field}: {value!r} is not a size; write bytes or a number with a unit such as 512KiB, 32MiB, 1GiB "
            "(KB, MB, GB are powers of 1000)", field=field,
        )
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def format_size(size: int) -> str:
    """``33554432`` → ``32MiB``: the largest binary unit that divides ``size``, else bytes."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"
