"""Declared SOP variables: plain defaults, typed declarations, and every value checked before a run."""

from __future__ import annotations

from typing import Any

import pytest

from smallyi.errors import InputError
from smallyi.sop.validate import load_sop
from smallyi.sop.variables import VarDecl, parse, resolve

DECLS = {
    "service": parse("service", "nginx")[0],
    "port": parse("port", 80)[0],
    "count": parse("count", {"type": "int", "default": 3, "min": 1, "max": 10})[0],
    "env": parse("env", {"type": "enum", "values": ["staging", "prod"]})[0],
    "tag": parse("tag", {"type": "pattern", "pattern": "[a-z0-9.-]+", "default": "latest"})[0],
    "note": parse("note", {"type": "string", "default": "x"})[0],
}


def test_declarations_and_defaults() -> None:
    """A plain value is a default of any type; a whole-number default makes an int; a typed declaration
    without a default is required; enum and pattern are vetted, int is also numeric."""
    assert DECLS["service"] == VarDecl("service", "", "nginx")
    assert DECLS["port"].type == "int" and DECLS["port"].numeric and DECLS["port"].vetted
    assert DECLS["env"].required and DECLS["env"].vetted and not DECLS["env"].numeric
    assert parse("lvl", {"type": "enum", "values": [1, 2, 3]})[0].numeric
    assert not DECLS["note"].vetted and not DECLS["service"].vetted
    assert parse("flag", True)[0].type == ""  # a boolean is not a whole number
    assert parse("m", {"a": 1})[0] == VarDecl("m", "", {"a": 1})  # a mapping without type: is a default


def test_values_are_checked_and_normalised() -> None:
    """Given values override defaults; an int's text becomes a number; every value fits its type."""
    got = resolve(DECLS, {"port": "8080", "count": "7", "env": "prod", "tag": "v1.2"})
    assert got == {"service": "nginx", "port": 8080, "count": 7, "env": "prod", "tag": "v1.2", "note": "x"}
    assert resolve(DECLS, {"env": "staging", "note": 5})["note"] == "5"


@pytest.mark.parametrize(("given", "message"), [
    ({"env": "prod", "port": "80/tcp"}, "vars.port: '80/tcp' is not a whole number"),
    ({"env": "prod", "port": "1e3"}, "vars.port: '1e3' is not a whole number"),
    ({"env": "prod", "port": " 80"}, "vars.port: ' 80' is not a whole number"),
    ({"env": "prod", "port": True}, "vars.port: True is not a whole number"),
    ({"env": "prod", "count": 11}, "vars.count: 11 is above the maximum 10"),
    ({"env": "prod", "count": "0"}, "vars.count: 0 is below the minimum 1"),
    ({"env": "dev"}, "vars.env: 'dev' is not one of staging, prod"),
    ({"env": "prod", "tag": "v1;rm"}, "vars.tag: 'v1;rm' does not match the pattern '[a-z0-9.-]+'"),
    ({"env": "prod", "tag": "v1\n"}, "does not match the pattern"),
    ({"env": "prod", "note": ["a"]}, "vars.note: expected text, got a list"),
    ({}, "vars.env: required (type enum: staging, prod, no default)"),
    ({"env": "prod", "typo": 1}, "vars: 'typo' not declared under vars:"),
])
def test_a_value_that_does_not_fit_is_refused_naming_the_variable(given: dict[str, Any], message: str) -> None:
    """Nothing starts with a bad value: the error names the variable, the value and what it must be."""
    with pytest.raises(InputError) as exc:
        resolve(DECLS, given)
    assert message in exc.value.message


def test_a_sop_declares_types_in_yaml() -> None:
    """vars: in a SOP: declarations next to plain defaults; the SOP keeps both."""
    sop, problems = load_sop("vars:\n  a: x\n  n: {type: int, default: 2}\n  e: {type: enum, values: [p, q]}\n"
                             "steps:\n  - {id: s, type: exec, cmd: 'echo {{ .vars.a }} {{ .vars.e }} $(( {{ .vars.n }} ))',"
                             " target: {hosts: [h]}}\n", strict=True)
    assert problems == []
    assert dict(sop.vars) == {"a": "x", "n": 2, "e": None}
    assert sop.var_decls["e"].describe() == {"type": "enum", "required": True, "values": ["p", "q"]}


def test_a_pattern_is_matched_on_bounded_text() -> None:
    """A value longer than 4096 characters is refused before the author's regular expression sees it."""
    decls = {"p": parse("p", {"type": "pattern", "pattern": "(a+)+b"})[0]}
    with pytest.raises(InputError, match="longer than 4096"):
        resolve(decls, {"p": "a" * 5000})
