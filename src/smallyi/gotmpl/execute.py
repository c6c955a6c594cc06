"""Rendering a template of a set as a stream of text pieces, knowing at every moment where it is.

The text is yielded piece by piece as it is produced, never gathered here, so the reader bounds it
(it stops reading at its limit and closes the stream). ``range`` over a number counts without
building a list. :meth:`Execution.where` names the template file and line being rendered, for an
error raised inside (a missing value) or from outside (a timer's signal, a memory error).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from smallyi.gotmpl.evaluator import Evaluator
from smallyi.gotmpl.functions import Raw, to_text, truthy
from smallyi.gotmpl.lexer import ExprError
from smallyi.gotmpl.parser import Pipeline
from smallyi.gotmpl.tree import Action, Body, Break, Document, If, Include, Range, TemplateSet, Text, With

__all__ = ["MAX_DEPTH", "Execution"]

#: blocks and template calls nested deeper than this while rendering stop it (a template calling itself)
MAX_DEPTH = 200


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Execution:
    """One rendering of one template of ``tset`` (see the module docstring).

    ``strict``: a field naming a missing key is an error, not nil; ``budget``: nodes it may evaluate
    (None: no count; bound the time instead).
    """

    def __init__(self, tset: TemplateSet, *, strict: bool = True, budget: int | None = None) -> None:
        self.tset = tset
        self.strict = strict
        self.budget = budget
        self.doc: Document | None = None
        self.pos = 0
        self.depth = 0
        self.ev = Evaluator(None, strict=strict, budget=budget)

    def stream(self, name: str, data: Any) -> Iterator[str]:
        """The text of template ``name`` with ``data`` as ``.`` and ``$``, piece by piece."""
        doc = self.tset.templates.get(name)
        if doc is None:
            raise ExprError(f"no template named {name!r}{self.tset.suggest(name)}")
        return self.run(doc, data)

    def run(self, doc: Document, data: Any) -> Iterator[str]:
        """The text of ``doc`` (in the set or not: a path template), which may call the set's templates."""
        self.doc, self.pos, self.depth = doc, 0, 0
        self.ev = Evaluator(data, strict=self.strict, budget=self.budget)
        yield from self._body(doc.body)

    def where(self, exc: BaseException | None = None) -> tuple[str, int]:
        """The file and line being rendered (at ``exc``'s own position when it has one)."""
        if self.doc is None:
            return "", 0
        pos = exc.pos if isinstance(exc, ExprError) and exc.pos else self.pos
        return self.doc.file, self.doc.line(pos)

    # -- the walk (an error ends the whole rendering: ``doc`` and ``pos`` stay where it happened) ----

    def _body(self, body: Body) -> Iterator[str]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"templates and blocks nest more than {MAX_DEPTH} deep (does a template call "
                            "itself without end?)", pos=self.pos)
        ev = self.ev
        for item in body:
            if isinstance(item, Text):
                yield item.text
                continue
            self.pos = item.pos
            if isinstance(item, Action):
                value = ev.pipeline(item.pipe)
                if item.pipe.decl:
                    self._bind(item.pipe, value)
                else:
                    yield to_text(value)
            elif isinstance(item, If):
                yield from self._if(item)
            elif isinstance(item, Range):
                yield from self._range(item)
            elif isinstance(item, Include):
                yield from self._include(item)
            elif isinstance(item, Break):
                raise _Break
            else:
                raise _Continue
        self.depth -= 1

    def _bind(self, pipe: Pipeline, value: Any) -> None:
        if pipe.assign:
            self.ev.assign(pipe.decl[0], value, pipe.pos)
        else:
            for name in pipe.decl:
                self.ev.declare(name, value)

    def _if(self, item: If) -> Iterator[str]:
        ev = self.ev
        mark = ev.mark()
        for pipe, body in item.branches:
            self.pos = pipe.pos
            value = ev.pipeline(pipe, lenient=True)
            if pipe.decl:
                self._bind(pipe, value)
            if truthy(value):
                if isinstance(item, With):
                    dot, ev.dot = ev.dot, value.value if isinstance(value, Raw) else value
                    yield from self._body(body)
                    ev.dot = dot
                else:
                    yield from self._body(body)
                break
        else:
            if item.otherwise is not None:
                yield from self._body(item.otherwise)
        ev.release(mark)

    def _range(self, item: Range) -> Iterator[str]:
        ev = self.ev
        mark = ev.mark()
        self.pos = item.pipe.pos
        value = ev.pipeline(item.pipe, lenient=True)
        names = item.pipe.decl
        for name in names:
            ev.declare(name, None)
        dot = ev.dot
        ran = False
        for key, elem in self._elements(value, item):
            ran = True
            ev.dot = elem
            if len(names) == 1:
                ev.variables[mark][1] = elem
            elif len(names) == 2:
                ev.variables[mark][1], ev.variables[mark + 1][1] = key, elem
            inner, depth = ev.mark(), self.depth
            try:
                yield from self._body(item.body)
            except _Continue:
                self.depth = depth
            except _Break:
                self.depth = depth
                break
            finally:
                ev.release(inner)
        ev.dot = dot
        if not ran and item.otherwise is not None:
            yield from self._body(item.otherwise)
        ev.release(mark)

    def _elements(self, value: Any, item: Range) -> Iterator[tuple[Any, Any]]:
        """(key, element) pairs: a list's indexes and items, a map's sorted keys and values, 0..n-1."""
        if isinstance(value, Raw):
            value = value.value
        if value is None:
            return iter(())
        if isinstance(value, list | tuple):
            return enumerate(value)
        if isinstance(value, Mapping):
            try:
                keys = sorted(value)
            except TypeError:
                keys = sorted(value, key=lambda k: (type(k).__name__, str(k)))
            return ((k, value[k]) for k in keys)
        if isinstance(value, int) and not isinstance(value, bool):
            return ((i, i) for i in range(value))  # counted as it goes: no list of n numbers
        hint = ' (split it first: range (split "," .x))' if isinstance(value, str) else ""
        raise ExprError(f"range cannot go over {to_text(value)[:40]!r}: it takes a list, a map or a "
                        f"number{hint}", pos=item.pipe.pos)

    def _include(self, item: Include) -> Iterator[str]:
        doc = self.tset.templates.get(item.name)
        if doc is None:
            raise ExprError(f"no template named {item.name!r}{self.tset.suggest(item.name)}", pos=item.pos)
        ev = self.ev
        value = ev.pipeline(item.pipe) if item.pipe is not None else None
        if isinstance(value, Raw):
            value = value.value
        saved = self.doc, ev.dot, ev.variables
        self.doc, ev.dot, ev.variables = doc, value, [["", value]]
        yield from self._body(doc.body)
        self.doc, ev.dot, ev.variables = saved
