"""Go-style durations (``10s``, ``1m30s``, ``250ms``, ``2h``): the original's format, parsed purely."""

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
