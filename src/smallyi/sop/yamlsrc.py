"""YAML text → plain values plus the line of every key and list item, so errors can name lines.

Pure: text in, values out. Duplicate keys are errors (PyYAML would keep the last silently), and so
are anchors to mappings merged with ``<<`` that repeat keys; one document only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Path = tuple[str | int, ...]

#: the largest SOP file accepted
MAX_SOURCE = 512 * 1024


class YamlProblem(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Located:
    """``data`` as ``yaml.safe_load`` would give it, and ``lines[path]`` for each key and item."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, *path: str | int) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p: Path = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


def load(text: str) -> Located:
    """Parse one YAML document; YamlProblem (with a line) when it is not valid YAML."""
    if len(text) > MAX_SOURCE:
        raise YamlProblem(f"the file is {len(text)} bytes; at most {MAX_SOURCE} are accepted", None)
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(f"YAML syntax error: {problem}", mark.line + 1 if mark else None) from None
    docs = [d for d in docs if d is not None]
    if not docs:
        return Located(None, {(): 1})
    if len(docs) > 1:
        raise YamlProblem("the file holds several YAML documents ('---'); a SOP is one document",
                          docs[1].start_mark.line + 1)
    out = Located(None)
    out.lines[()] = docs[0].start_mark.line + 1
    out.data = _Builder(out.lines).build(docs[0], ())
    return out


class _Builder:
    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.constructor = yaml.SafeLoader("")
        self.depth = 0

    def build(self, node: Node, path: Path) -> Any:
        self.depth += 1
        if self.depth > 64:
            raise YamlProblem("the document nests deeper than 64 levels", node.start_mark.line + 1)
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.lines[(*path, i)] = item.start_mark.line + 1
                    out.append(self.build(item, (*path, i)))
                return out
            assert isinstance(node, ScalarNode)
            try:
                return self.constructor.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                raise YamlProblem(f"bad value: {getattr(exc, 'problem', exc)}", node.start_mark.line + 1) from None
        finally:
            self.depth -= 1

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        try:
            self.constructor.flatten_mapping(node)  # resolves '<<' merge keys
        except yaml.YAMLError as exc:
            raise YamlProblem(f"bad merge key: {getattr(exc, 'problem', exc)}", node.start_mark.line + 1) from None
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem("a key must be a plain name, not a list or mapping", line)
            key = self.constructor.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key_node.value)  # keys are names: `on:` is "on", not YAML 1.1's true
            if key in out:
                raise YamlProblem(f"key {key!r} appears twice (first on line {self.lines[(*path, key)]})", line)
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        return out
