"""Evaluating parsed actions against a context of plain values, within a work budget."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from smallyi.gotmpl.functions import Raw, call, to_text, truthy
from smallyi.gotmpl.lexer import ExprError
from smallyi.gotmpl.parser import Call, Field, Literal, Node, Pipeline, Sub

__all__ = ["Evaluator", "Raw", "to_text", "truthy"]

#: nodes one evaluation may visit before it is stopped
MAX_STEPS = 20_000


class Evaluator:
    """Evaluates one template's actions; ``steps`` counts work across them."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context
        self.steps = 0

    def pipeline(self, pipe: Pipeline) -> Any:
        value = self.node(pipe.commands[0])
        for cmd in pipe.commands[1:]:
            assert isinstance(cmd, Call)  # the parser allows only calls after '|'
            value = self._call(cmd, extra=(value,))
        return value

    def node(self, node: Node) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ExprError(f"the expression does more than {MAX_STEPS} steps of work; simplify it", pos=_pos(node))
        if isinstance(node, Field):
            return _walk(self.context, node.path, node.pos, root=True)
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Sub):
            return _walk(self.pipeline(node.pipeline), node.path, node.pos, root=False)
        return self.pipeline(node)

    def _call(self, node: Call, extra: tuple[Any, ...] = ()) -> Any:
        args = [self.node(a) for a in node.args]
        args.extend(extra)
        return call(node.name, args, node.pos)


def _pos(node: Node) -> int:
    return node.pos


def _walk(value: Any, path: tuple[str, ...], pos: int, *, root: bool) -> Any:
    """Follow field names through maps; a missing key is nil, a field of a non-map is an error."""
    for i, name in enumerate(path):
        if isinstance(value, Raw):
            value = value.value
        if value is None:
            return None
        if not isinstance(value, Mapping):
            where = "." + ".".join(path[:i]) if (i or not root) else "the context"
            raise ExprError(f"cannot read field {name!r} of {where}: it is not a map "
                            f"(it is {to_text(value)[:40]!r})", pos=pos)
        value = value.get(name)
    return value


Escape = Callable[[str], str]
