"""Evaluating parsed actions against plain values: the data, the dot, the variables, a work budget."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from smallyi.gotmpl.functions import Raw, call, to_text, truthy
from smallyi.gotmpl.lexer import ExprError
from smallyi.gotmpl.parser import Call, Field, Literal, Node, Pipeline, Sub, Var

__all__ = ["MAX_STEPS", "TESTS", "Escape", "Evaluator", "MissingValue", "Raw", "to_text", "truthy"]

#: nodes one evaluation may visit before it is stopped (SOP expressions; GitOps bounds time instead)
MAX_STEPS = 20_000
_DEFAULT_BUDGET = -1


class MissingValue(ExprError):
    """A strict evaluation read a key its map does not have."""


#: functions that test a value rather than use it: a missing value is nil to them, even when strict
TESTS = frozenset({"default", "empty", "not", "and", "or"})


class Evaluator:
    """Evaluates one template's actions; ``steps`` counts work across them.

    ``context`` is the data (``$``) and the first dot (``.``). ``strict``: a field naming a key its map
    does not have is an error (MissingValue) where its value is used (printed, passed to a function),
    and nil where it is only tested: a condition that is one field (``if .x``, ``with .x``,
    ``range .x``, with ``lenient``) or an argument of ``default``, ``empty``, ``not``, ``and``, ``or``.
    ``budget``: the nodes it may visit (None: no count; the default is MAX_STEPS).
    """

    def __init__(self, context: Any, *, strict: bool = False, budget: int | None = _DEFAULT_BUDGET) -> None:
        self.context = context
        self.dot: Any = context
        #: the variables in scope, innermost last; ``$`` (name "") is the data
        self.variables: list[list[Any]] = [["", context]]
        self.strict = strict
        self.budget = MAX_STEPS if budget == _DEFAULT_BUDGET else budget
        self.steps = 0

    def pipeline(self, pipe: Pipeline, *, lenient: bool = False) -> Any:
        """The pipeline's value; ``lenient``: a pipeline that is one field may name a missing key (nil)."""
        commands = pipe.commands
        first = lenient if len(commands) == 1 else _tests(commands[1])
        value = self.node(commands[0], lenient=first)
        for cmd in commands[1:]:
            assert isinstance(cmd, Call)  # the parser allows only calls after '|'
            value = self._call(cmd, extra=(value,))
        return value

    def node(self, node: Node, *, lenient: bool = False) -> Any:
        self.steps += 1
        if self.budget is not None and self.steps > self.budget:
            raise ExprError(f"the expression does more than {self.budget} steps of work; simplify it", pos=node.pos)
        strict = self.strict and not lenient
        if isinstance(node, Field):
            return _walk(self.dot, node.path, node.pos, shown=".", strict=strict)
        if isinstance(node, Var):
            return _walk(self.lookup(node.name, node.pos), node.path, node.pos, shown="$" + node.name, strict=strict)
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Sub):
            return _walk(self.pipeline(node.pipeline), node.path, node.pos, shown="(...)", strict=strict)
        return self.pipeline(node, lenient=lenient)

    # -- variables --------------------------------------------------------------------------------

    def lookup(self, name: str, pos: int) -> Any:
        for var in reversed(self.variables):
            if var[0] == name:
                return var[1]
        raise ExprError(f"undefined variable ${name}", pos=pos)

    def declare(self, name: str, value: Any) -> None:
        self.variables.append([name, value])

    def assign(self, name: str, value: Any, pos: int) -> None:
        for var in reversed(self.variables):
            if var[0] == name:
                var[1] = value
                return
        raise ExprError(f"undefined variable ${name}", pos=pos)

    def mark(self) -> int:
        """Where the variables of a block begin; ``release(mark)`` drops them at its end."""
        return len(self.variables)

    def release(self, mark: int) -> None:
        del self.variables[mark:]

    # -- calls ------------------------------------------------------------------------------------

    def _call(self, node: Call, extra: tuple[Any, ...] = ()) -> Any:
        tests = _tests(node)
        if node.name in ("and", "or") and node.args:
            return self._logic(node, extra)
        args = [self.node(a, lenient=tests) for a in node.args]
        args.extend(extra)
        return call(node.name, args, node.pos)

    def _logic(self, node: Call, extra: tuple[Any, ...]) -> Any:
        """Go's ``and``/``or``: the first value that decides, or the last; later arguments are not evaluated."""
        want = node.name == "or"
        value: Any = None
        for arg in node.args:
            value = self.node(arg, lenient=True)
            if truthy(value) is want:
                return value
        return extra[0] if extra else value


def _tests(node: Node) -> bool:
    """Is ``node`` a call of a function that tests its values (so they may be missing)?"""
    return isinstance(node, Call) and node.name in TESTS


def _walk(value: Any, path: tuple[str, ...], pos: int, *, shown: str, strict: bool) -> Any:
    """Follow field names through maps; a missing key is nil (an error when ``strict``); a field of
    something that is not a map is an error."""
    for i, name in enumerate(path):
        if isinstance(value, Raw):
            value = value.value
        if value is None and not strict:
            return None
        where = _shown(shown, path[:i])
        if not isinstance(value, Mapping):
            what = "nil" if value is None else f"not a map (it is {to_text(value)[:40]!r})"
            raise ExprError(f"cannot read field {name!r} of {where}: it is {what}", pos=pos)
        if name not in value:
            if strict:
                raise MissingValue(_missing(shown, path[:i + 1], value), pos=pos)
            return None
        value = value[name]
    return value


def _shown(shown: str, path: tuple[str, ...]) -> str:
    if shown == ".":
        return "." + ".".join(path) if path else "the data"
    return shown + "".join("." + p for p in path)


def _missing(shown: str, path: tuple[str, ...], where: Mapping[str, Any]) -> str:
    full = _shown(shown, path)
    keys = [k for k in where if isinstance(k, str)]
    close = difflib.get_close_matches(path[-1], keys, n=1)
    if close:
        return f"no value for {full} (did you mean {_shown(shown, (*path[:-1], close[0]))}?)"
    owner = "the data" if shown == "." and len(path) == 1 else _shown(shown, path[:-1])
    return f"no value for {full}: {owner} has no key {path[-1]!r}"


Escape = Callable[[str], str]
