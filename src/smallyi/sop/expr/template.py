"""A compiled template: evaluate it to a value (conditions) or render it to text (commands, messages)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smallyi.sop.expr.evaluator import Escape, Evaluator, Raw, to_text, truthy
from smallyi.sop.expr.lexer import ExprError
from smallyi.sop.expr.parser import Call, Field, Node, Pipeline, Sub, parse_action, parse_chunks

_FALSE_WORDS = {"", "false", "0", "no"}


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[str | Pipeline, ...]

    @property
    def has_actions(self) -> bool:
        return any(isinstance(p, Pipeline) for p in self.parts)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value: a lone action gives its value as is; anything else renders to text."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Pipeline):
            value = Evaluator(context).pipeline(self.parts[0])
            return value.value if isinstance(value, Raw) else value
        return self.render(context)

    def test(self, context: Mapping[str, Any]) -> bool:
        """As a condition: the value's truth; text is false when empty, "false", "0" or "no"."""
        value = self.evaluate(context)
        if isinstance(value, str):
            return value.strip().lower() not in _FALSE_WORDS
        return truthy(value)

    def render(self, context: Mapping[str, Any], *, escape: Escape | None = None) -> str:
        """Text with every action replaced by its value; ``escape`` applies to values not marked raw.

        (Commands are not made this way: a value escaped into command text is only as safe as the
        escaping's idea of where it lands. ``sop.shellbind`` passes values beside the text instead.)"""
        ev = Evaluator(context)
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = ev.pipeline(part)
            if isinstance(value, Raw):
                out.append(to_text(value))
            elif escape is not None:
                out.append(escape(to_text(value)))
            else:
                out.append(to_text(value))
        return "".join(out)

    def fields(self) -> list[tuple[tuple[str, ...], int]]:
        """Every ``.a.b`` read from the context, with its position (for checking names up front)."""
        return [(f.path, f.pos) for p in self.parts if isinstance(p, Pipeline) for f in _fields(p)]

    def calls(self) -> list[tuple[str, int]]:
        return [(c.name, c.pos) for p in self.parts if isinstance(p, Pipeline) for c in _calls(p)]


def compile_template(text: str, *, bare: bool = False) -> Template:
    """Parse ``text``; ``bare`` reads text without ``{{`` as one action (``when: "eq .status 'ok'"``)."""
    if not isinstance(text, str):
        raise ExprError(f"expected text, got {type(text).__name__}")
    if bare and "{{" not in text:
        if not text.strip():
            raise ExprError("the expression is empty")
        return Template(text, (parse_action(text, 0),))
    return Template(text, tuple(parse_chunks(text)))


def field_paths(text: str, *, bare: bool = False) -> list[tuple[str, ...]]:
    return [p for p, _ in compile_template(text, bare=bare).fields()]


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, Pipeline):
        yield from node.commands
    elif isinstance(node, Call):
        yield from node.args
    elif isinstance(node, Sub):
        yield node.pipeline


def _fields(node: Node) -> Iterator[Field]:
    if isinstance(node, Field):
        yield node
    for child in _children(node):
        yield from _fields(child)


def _calls(node: Node) -> Iterator[Call]:
    if isinstance(node, Call):
        yield node
    for child in _children(node):
        yield from _calls(child)


__all__ = ["ExprError", "Template", "compile_template", "field_paths"]
