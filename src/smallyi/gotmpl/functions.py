"""The functions an action may call: pure, on plain values, each checking its arguments.

Argument order follows Go templates and sprig, so that a piped value comes last:
``.output | contains '95%'`` is ``contains '95%' .output``.
"""

from __future__ import annotations

import json
import re
import shlex
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smallyi.gotmpl.lexer import ExprError

#: the largest string or list a function may build
MAX_VALUE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Raw:
    """A value that rendering must not escape (``{{ .flags | raw }}`` in a command)."""

    value: Any


def truthy(v: Any) -> bool:
    """Go's truth: false, 0, nil, and empty strings, lists and maps are false."""
    if isinstance(v, Raw):
        v = v.value
    if v is None or v is False:
        return False
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v != 0
    if isinstance(v, str | list | dict | tuple):
        return len(v) > 0
    return True


def to_text(v: Any) -> str:
    """How a value prints: nil as nothing, booleans as true/false, lists and maps as JSON."""
    if isinstance(v, Raw):
        v = v.value
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return str(v)
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, Raw) else v


def _kind(v: Any) -> str:
    v = _plain(v)
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list | tuple):
        return "a list"
    if isinstance(v, dict):
        return "a map"
    return type(v).__name__


class _Fn:
    def __init__(self, name: str, pos: int) -> None:
        self.name, self.pos = name, pos

    def err(self, msg: str) -> ExprError:
        return ExprError(f"{self.name}: {msg}", pos=self.pos)

    def s(self, v: Any, which: str = "argument") -> str:
        v = _plain(v)
        if v is None:
            return ""
        if isinstance(v, str):
            return v
        if isinstance(v, int | float | bool):
            return to_text(v)
        raise self.err(f"{which} must be a string, got {_kind(v)}")

    def num(self, v: Any) -> float | int:
        v = _plain(v)
        if isinstance(v, bool) or not isinstance(v, int | float):
            if isinstance(v, str):
                try:
                    return int(v.strip())
                except ValueError:
                    try:
                        return float(v.strip())
                    except ValueError:
                        pass
            raise self.err(f"expected a number, got {_kind(v)} {to_text(v)[:40]!r}")
        return v

    def seq(self, v: Any) -> list[Any]:
        v = _plain(v)
        if isinstance(v, list | tuple):
            return list(v)
        if v is None:
            return []
        raise self.err(f"expected a list, got {_kind(v)}")

    def cap(self, v: Any) -> Any:
        size = len(v) if isinstance(v, str | list) else 0
        if size > MAX_VALUE:
            raise self.err(f"the result would be {size} long; at most {MAX_VALUE} is allowed")
        return v


def _compare(f: _Fn, a: Any, b: Any) -> int:
    a, b = _plain(a), _plain(b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return (a > b) - (a < b)
    raise f.err(f"cannot compare {_kind(a)} with {_kind(b)}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b  # true is not 1
    return bool(a == b)


def _eq(f: _Fn, a: Any, *others: Any) -> bool:
    """True if ``a`` equals any of the others (Go's ``eq`` takes several)."""
    return any(_same(_plain(a), _plain(b)) for b in others)


def _contains(f: _Fn, needle: Any, hay: Any) -> bool:
    hay = _plain(hay)
    if isinstance(hay, list | tuple):
        return _plain(needle) in hay
    if isinstance(hay, dict):
        return f.s(needle) in hay
    return f.s(needle, "the substring") in f.s(hay, "the text")


def _index(f: _Fn, coll: Any, *keys: Any) -> Any:
    v = _plain(coll)
    for k in keys:
        k = _plain(k)
        if v is None:
            return None
        if isinstance(v, dict):
            v = v.get(to_text(k))
        elif isinstance(v, list | tuple | str):
            i = f.num(k)
            if not isinstance(i, int):
                raise f.err("a list index must be a whole number")
            v = v[i] if -len(v) <= i < len(v) else None
        else:
            raise f.err(f"cannot index {_kind(v)}")
    return v


def _div(f: _Fn, a: Any, b: Any) -> float | int:
    x, y = f.num(a), f.num(b)
    if y == 0:
        raise f.err("division by zero")
    return x // y if isinstance(x, int) and isinstance(y, int) else x / y


def _mod(f: _Fn, a: Any, b: Any) -> float | int:
    x, y = f.num(a), f.num(b)
    if y == 0:
        raise f.err("division by zero")
    return x % y


def _to_int(f: _Fn, v: Any) -> int:
    n = f.num(v)
    return int(n)


def _to_float(f: _Fn, v: Any) -> float:
    return float(f.num(v))


def _from_json(f: _Fn, v: Any) -> Any:
    text = f.s(v)
    if len(text) > MAX_VALUE:
        raise f.err("the JSON text is too long")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise f.err(f"not JSON: {exc}") from None


def _grep(f: _Fn, needle: Any, hay: Any) -> str:
    sub = f.s(needle, "the substring")
    return "\n".join(line for line in f.s(hay, "the text").splitlines() if sub in line)


def _join(f: _Fn, sep: Any, items: Any) -> str:
    return str(f.cap(f.s(sep).join(to_text(x) for x in f.seq(items))))


def _replace(f: _Fn, old: Any, new: Any, s: Any) -> str:
    text, a, b = f.s(s), f.s(old), f.s(new)
    if a and len(b) > len(a) and text.count(a) * (len(b) - len(a)) + len(text) > MAX_VALUE:
        raise f.err(f"the result would be longer than {MAX_VALUE}")
    return text.replace(a, b)


def _length(f: _Fn, v: Any) -> int:
    v = _plain(v)
    if v is None:
        return 0
    if isinstance(v, str | list | tuple | dict):
        return len(v)
    raise f.err(f"{_kind(v)} has no length")


def _print(f: _Fn, *args: Any) -> str:
    return str(f.cap("".join(to_text(a) for a in args)))


#: the widest field or longest precision a printf verb may ask for
MAX_WIDTH = 1024
_VERB = re.compile(r"%([-+# 0]*)(\d*)(?:\.(\d*))?(.?)", re.DOTALL)


def _printf(f: _Fn, fmt: Any, *args: Any) -> str:
    """Go's ``printf`` for the verbs a config file needs: ``%s %v %q %d %f %e %g %x %X %o %b %t %%``."""
    text = f.s(fmt, "the format")
    out: list[str] = []
    used = 0
    pos = 0
    size = 0
    for m in _VERB.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            raise f.err("the format ends in the middle of a % verb")
        if int(width or 0) > MAX_WIDTH or int(prec or 0) > MAX_WIDTH:
            raise f.err(f"a width or precision of at most {MAX_WIDTH} is allowed")
        if used >= len(args):
            raise f.err(f"%{verb} has no value: the format needs more values than the {len(args)} given")
        piece = _verb(f, verb, flags, width, prec, _plain(args[used]))
        used += 1
        size += len(piece)
        if size > MAX_VALUE:
            raise f.err(f"the result would be longer than {MAX_VALUE}")
        out.append(piece)
    out.append(text[pos:])
    if used < len(args):
        raise f.err(f"{len(args) - used} value(s) more than the format's verbs")
    return str(f.cap("".join(out)))


def _verb(f: _Fn, verb: str, flags: str, width: str, prec: str | None, v: Any) -> str:
    align = "<" if "-" in flags else ""
    zero = "0" if "0" in flags and not align and verb not in "sqvt" else ""
    sign = "+" if "+" in flags else " " if " " in flags else ""
    alt = "#" if "#" in flags else ""
    dot = f".{prec or 0}" if prec is not None else ""
    if verb in "svqt":
        if verb == "t" and not isinstance(v, bool):
            raise f.err(f"%t needs a boolean, got {_kind(v)}")
        text = to_text(v)
        if verb == "q":
            text = json.dumps(text, ensure_ascii=False)
        elif prec is not None:
            text = text[:int(prec or 0)]
        return format(text, f"{align}{width}")
    if verb in "xX" and isinstance(v, str):
        return format(v.encode().hex().upper() if verb == "X" else v.encode().hex(), f"{align}{width}")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise f.err(f"%{verb} needs a number, got {_kind(v)} {to_text(v)[:40]!r}")
    if verb in "dxXob":
        if isinstance(v, float):
            if not v.is_integer():
                raise f.err(f"%{verb} needs a whole number, got {to_text(v)}")
            v = int(v)
        return format(v, f"{align}{sign}{alt}{zero}{width}{'' if verb == 'd' else verb}")
    if verb in "feEgG" or verb == "F":
        py = "f" if verb == "F" else verb
        if verb in "gG" and prec is None:
            return format(to_text(v) if verb == "g" else to_text(v).upper(), f"{align}{width}")
        return format(float(v), f"{align}{sign}{zero}{width}{dot or '.6'}{py}")
    raise f.err(f"unknown verb %{verb}; known: %s %v %q %d %f %e %g %x %X %o %b %t %%")


Impl = Callable[..., Any]
#: name → (fewest arguments, most arguments or None for any, implementation taking _Fn first)
FUNCTIONS: dict[str, tuple[int, int | None, Impl]] = {
    "eq": (2, None, _eq),
    "ne": (2, 2, lambda f, a, b: not _eq(f, a, b)),
    "lt": (2, 2, lambda f, a, b: _compare(f, a, b) < 0),
    "le": (2, 2, lambda f, a, b: _compare(f, a, b) <= 0),
    "gt": (2, 2, lambda f, a, b: _compare(f, a, b) > 0),
    "ge": (2, 2, lambda f, a, b: _compare(f, a, b) >= 0),
    "not": (1, 1, lambda f, a: not truthy(a)),
    "empty": (1, 1, lambda f, a: not truthy(a)),
    "contains": (2, 2, _contains),
    "hasPrefix": (2, 2, lambda f, p, s: f.s(s).startswith(f.s(p))),
    "hasSuffix": (2, 2, lambda f, p, s: f.s(s).endswith(f.s(p))),
    "lower": (1, 1, lambda f, s: f.s(s).lower()),
    "upper": (1, 1, lambda f, s: f.s(s).upper()),
    "trim": (1, 1, lambda f, s: f.s(s).strip()),
    "trimPrefix": (2, 2, lambda f, p, s: f.s(s).removeprefix(f.s(p))),
    "trimSuffix": (2, 2, lambda f, p, s: f.s(s).removesuffix(f.s(p))),
    "replace": (3, 3, _replace),
    "split": (2, 2, lambda f, sep, s: f.s(s).split(f.s(sep)) if f.s(sep) else f.err("the separator is empty")),
    "join": (2, 2, _join),
    "lines": (1, 1, lambda f, s: f.s(s).splitlines()),
    "fields": (1, 1, lambda f, s: f.s(s).split()),
    "grep": (2, 2, _grep),
    "len": (1, 1, _length),
    "index": (2, None, _index),
    "at": (2, 2, lambda f, i, coll: _index(f, coll, i)),
    "first": (1, 1, lambda f, v: _index(f, v, 0)),
    "last": (1, 1, lambda f, v: _index(f, v, -1)),
    "default": (2, 2, lambda f, d, v: v if truthy(v) else d),
    "int": (1, 1, _to_int),
    "float": (1, 1, _to_float),
    "str": (1, 1, lambda f, v: to_text(v)),
    "add": (2, 2, lambda f, a, b: f.num(a) + f.num(b)),
    "sub": (2, 2, lambda f, a, b: f.num(a) - f.num(b)),
    "mul": (2, 2, lambda f, a, b: f.num(a) * f.num(b) if abs(f.num(a) * f.num(b)) < 1e18 else f.err("too large")),
    "div": (2, 2, _div),
    "mod": (2, 2, _mod),
    "quote": (1, 1, lambda f, v: Raw(shlex.quote(to_text(v)))),
    "urlquery": (1, 1, lambda f, v: urllib.parse.quote(to_text(v), safe="")),
    "toJson": (1, 1, lambda f, v: f.cap(json.dumps(_plain(v), ensure_ascii=False, sort_keys=True))),
    "fromJson": (1, 1, _from_json),
    "print": (0, None, _print),
    "printf": (1, None, _printf),
    "println": (0, None, lambda f, *a: _print(f, " ".join(to_text(x) for x in a), "\n")),
    "raw": (1, 1, lambda f, v: Raw(_plain(v))),
}
# Go's boolean functions return the argument that decides; the evaluator stops at it (evaluator._logic)
FUNCTIONS["and"] = (1, None, lambda f, *a: next((x for x in a if not truthy(x)), a[-1]))
FUNCTIONS["or"] = (1, None, lambda f, *a: next((x for x in a if truthy(x)), a[-1]))


def call(name: str, args: list[Any], pos: int) -> Any:
    spec = FUNCTIONS.get(name)
    if spec is None:
        raise ExprError(f"unknown function {name!r}; known: {', '.join(sorted(FUNCTIONS))}", pos=pos)
    low, high, impl = spec
    if len(args) < low or (high is not None and len(args) > high):
        want = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
        raise ExprError(f"{name}: takes {want} argument(s), got {len(args)}", pos=pos)
    f = _Fn(name, pos)
    result = impl(f, *args)
    if isinstance(result, ExprError):
        raise result
    return result
