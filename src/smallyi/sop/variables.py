"""A SOP's variables: each a plain default, or a declared type that every value is checked against
before a run starts (``int``, ``enum``, ``pattern``, ``string``). Pure.

    vars:
      service: nginx                                   # any value; nginx unless the run gives one
      port: 80                                         # a whole-number default makes an int
      count: {type: int, default: 3, min: 1, max: 10}
      env: {type: enum, values: [staging, prod]}       # no default: the run must give it
      tag: {type: pattern, pattern: '[a-z0-9.-]+', default: latest}

Types matter most where values reach a shell (``steps.commands``): an ``int`` may be used in shell
arithmetic, and ``int``, ``enum`` and ``pattern`` values, whose every possible value the author chose,
are *vetted*: they may be inserted as code (``raw``) or where the shell would run them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast

from smallyi.errors import InputError

TYPES = ("string", "int", "enum", "pattern")
#: the fields a declaration may have (a mapping with ``type:`` declares; any other value is a default)
FIELDS = frozenset({"type", "default", "description", "values", "pattern", "min", "max"})
#: a whole number as text: optional minus, digits, nothing else (no spaces, signs, 0x, exponents)
INT_RE = re.compile(r"-?[0-9]{1,18}")
#: the longest value a pattern is matched against (a regular expression may take long on long text)
MAX_PATTERN_VALUE = 4096


#: a declaration's type as shown: "any" for a plain default
VarTypeName = Literal["any", "string", "int", "enum", "pattern"]


class VarType(TypedDict):
    """A declaration as data (``VarTypeOut``): the optional keys only where they apply."""

    type: VarTypeName
    required: bool
    #: present only when not required: the declared default, of any type
    default: NotRequired[Any]
    values: NotRequired[list[Any]]
    pattern: NotRequired[str]
    min: NotRequired[int]
    max: NotRequired[int]


@dataclass(frozen=True, slots=True)
class VarDecl:
    name: str
    #: "" for a plain default (any value), else one of TYPES
    type: str = ""
    default: Any = None
    #: a typed variable declared without a default: every run must give it
    required: bool = False
    values: tuple[Any, ...] = ()
    pattern: str = ""
    min: int | None = None
    max: int | None = None
    #: the type comes from a plain whole-number default (``port: 80``), not a declaration
    implicit: bool = False

    @property
    def vetted(self) -> bool:
        """Every value it can take was chosen by the SOP's author (a number, one of a list, a pattern)."""
        return self.type in ("int", "enum", "pattern")

    @property
    def numeric(self) -> bool:
        """Every value it can take is a whole number (safe in shell arithmetic)."""
        return self.type == "int" or (self.type == "enum" and all(_is_int(v) for v in self.values))

    def describe(self) -> VarType:
        """The declaration as data (for the API and the console's run form)."""
        out: VarType = {"type": cast(VarTypeName, self.type or "any"), "required": self.required}
        if not self.required:
            out["default"] = self.default
        if self.type == "enum":
            out["values"] = list(self.values)
        if self.type == "pattern":
            out["pattern"] = self.pattern
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and bool(INT_RE.fullmatch(v)))


def parse(name: str, raw: Any) -> tuple[VarDecl, list[tuple[str, str]]]:
    """The declaration under ``vars.<name>`` and its problems as (field, message)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return VarDecl(name, "int", raw, implicit=True), []
    if not (isinstance(raw, dict) and "type" in raw):
        return VarDecl(name, "", raw), []
    problems: list[tuple[str, str]] = []
    for key in raw:
        if key not in FIELDS:
            problems.append((str(key), f"unknown field {key!r} in a variable declaration; it has "
                                       f"{', '.join(sorted(FIELDS))}"))
    kind = raw["type"]
    if kind not in TYPES:
        problems.append(("type", f"unknown type {kind!r}; one of {', '.join(TYPES)}"))
        return VarDecl(name, "", raw.get("default")), problems
    values: tuple[Any, ...] = ()
    if kind == "enum":
        got = raw.get("values")
        if not isinstance(got, list) or not got or not all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in got):
            problems.append(("values", "an enum needs values: a non-empty list of texts or whole numbers"))
        else:
            values = tuple(got)
    elif "values" in raw:
        problems.append(("values", "values: is for type enum"))
    pattern = ""
    if kind == "pattern":
        got = raw.get("pattern")
        if not isinstance(got, str) or not got:
            problems.append(("pattern", "a pattern variable needs pattern: a regular expression the whole value "
                                        "must match"))
        else:
            try:
                re.compile(got)
                pattern = got
            except re.error as exc:
                problems.append(("pattern", f"{got!r} is not a regular expression: {exc}"))
    elif "pattern" in raw:
        problems.append(("pattern", "pattern: is for type pattern"))
    bounds: dict[str, int | None] = {"min": None, "max": None}
    for key in bounds:
        if key in raw:
            if kind != "int":
                problems.append((key, f"{key}: is for type int"))
            elif not _is_int(raw[key]) or isinstance(raw[key], str):
                problems.append((key, f"{key}: must be a whole number, got {raw[key]!r}"))
            else:
                bounds[key] = int(raw[key])
    decl = VarDecl(name, kind, None, "default" not in raw, values, pattern, bounds["min"], bounds["max"])
    if "default" in raw:
        try:
            decl = VarDecl(name, kind, check(decl, raw["default"]), False, values, pattern, bounds["min"],
                           bounds["max"])
        except ValueError as exc:
            problems.append(("default", f"the default does not fit: {exc}"))
    return decl, problems


def check(decl: VarDecl, value: Any) -> Any:
    """``value`` as the variable holds it (an int's text becomes a number); ValueError saying why not."""
    if decl.type == "":
        return value
    if decl.type == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected text, got {_kind(value)}")
        return value if isinstance(value, str) else str(value)
    if decl.type == "int":
        if not _is_int(value):
            raise ValueError(f"{_shown(value)} is not a whole number (digits, an optional leading '-')")
        n = int(value)
        if decl.min is not None and n < decl.min:
            raise ValueError(f"{n} is below the minimum {decl.min}")
        if decl.max is not None and n > decl.max:
            raise ValueError(f"{n} is above the maximum {decl.max}")
        return n
    if decl.type == "enum":
        for v in decl.values:
            if not isinstance(value, bool) and isinstance(value, str | int) and str(value) == str(v):
                return v
        raise ValueError(f"{_shown(value)} is not one of {', '.join(map(str, decl.values))}")
    if isinstance(value, str) and len(value) > MAX_PATTERN_VALUE:  # the author's regex may backtrack badly
        raise ValueError(f"{_shown(value)} is longer than {MAX_PATTERN_VALUE} characters")
    if not isinstance(value, str) or not re.fullmatch(decl.pattern, value):
        raise ValueError(f"{_shown(value)} does not match the pattern {decl.pattern!r}")
    return value


def resolve(decls: Mapping[str, VarDecl], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's variables: defaults overridden by ``given``, every value checked against its declaration.

    InputError names the variable: an undeclared name (a typo), a missing required one, a value that
    does not fit its type. Nothing is started with a bad value.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(decls))
    if unknown:
        declared = ", ".join(sorted(decls)) or "none"
        raise InputError(f"vars: {', '.join(map(repr, unknown))} not declared under vars: in the SOP "
                         f"(declared: {declared})", field="vars")
    out: dict[str, Any] = {}
    for name, decl in decls.items():
        if name not in given:
            if decl.required:
                raise InputError(f"vars.{name}: required ({_what(decl)}, no default): give it with --var "
                                 f"{name}=VALUE", field=f"vars.{name}")
            out[name] = decl.default
            continue
        try:
            out[name] = check(decl, given[name])
        except ValueError as exc:
            raise InputError(f"vars.{name}: {exc} ({_what(decl)})", field=f"vars.{name}") from None
    return out


def _what(decl: VarDecl) -> str:
    if decl.type == "enum":
        return f"type enum: {', '.join(map(str, decl.values))}"
    if decl.type == "pattern":
        return f"type pattern {decl.pattern!r}"
    if decl.implicit:
        return (f"its default {decl.default} makes it an int; declare it {{type: string, default: {decl.default}}} "
                "to take any text")
    return f"type {decl.type or 'any'}"


def _kind(v: Any) -> str:
    return "a list" if isinstance(v, list) else "a mapping" if isinstance(v, dict) else \
        "a boolean" if isinstance(v, bool) else "nothing" if v is None else type(v).__name__


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
