"""YAML read as composed nodes, so every value keeps the line it came from (for error messages)."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from smallyi.inventory.importers.fields import Problems

__all__ = ["MappingNode", "Node", "ScalarNode", "SequenceNode", "compose", "items", "line", "value"]


def compose(text: str, problems: Problems) -> Node | None:
    """The document's root node; None (and a problem naming the line) if it is not valid YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.add(mark.line + 1 if mark else 0, f"YAML syntax error: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        problems.add(0, f"YAML syntax error: {exc}")
    return None


def line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def value(node: Node, problems: Problems) -> Any:
    """The plain Python value of a node (str, int, bool, None, list, dict)."""
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except ConstructorError as exc:
        problems.add(line(node), f"YAML value cannot be read: {exc.problem}")
        return None


def items(node: MappingNode, problems: Problems) -> list[tuple[str, Node]]:
    """A mapping's (key, value node) pairs; non-text and repeated keys are problems, then skipped."""
    out: list[tuple[str, Node]] = []
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str):
            problems.add(line(key_node), "a mapping key must be plain text")
            continue
        if key in seen:
            problems.add(line(key_node), f"key {key!r} is given twice (first on line {seen[key]})")
            continue
        seen[key] = line(key_node)
        out.append((key, value_node))
    return out
