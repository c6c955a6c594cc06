"""Whole Go templates into trees: text, actions, ``if``/``range``/``with`` blocks, ``define``/``template``.

A file is parsed into a :class:`Body` (its top level) and the templates it defines; a
:class:`TemplateSet` holds several files and their definitions under one namespace, as Go's
``ParseFiles`` does, and checks every ``{{ template "name" }}`` against it up front. Variables are
checked as Go checks them: a ``$x`` must be declared before it is used, in a block that encloses it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

from smallyi.gotmpl.functions import FUNCTIONS
from smallyi.gotmpl.lexer import MAX_TEMPLATE, Chunk, ExprError, Token, split_template, tokenize
from smallyi.gotmpl.parser import Call, Node, Pipeline, Sub, Var, parse_tokens

__all__ = ["Action", "Body", "Break", "Continue", "Document", "DuplicateTemplate", "If", "Include", "Range", "TemplateSet", "Text",
           "With", "parse_document"]

#: blocks nested deeper than this are refused (each level is a frame when it renders)
MAX_NESTING = 100
KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"})


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class Action:
    """``{{ pipeline }}``: its value printed (nothing when it declares or assigns a variable)."""

    pipe: Pipeline
    pos: int


@dataclass(frozen=True, slots=True)
class If:
    """``if``/``else if``/``else``; ``with`` is the same with ``dot`` set to the value that held."""

    branches: tuple[tuple[Pipeline, Body], ...]
    otherwise: Body | None
    pos: int


@dataclass(frozen=True, slots=True)
class With(If):
    pass


@dataclass(frozen=True, slots=True)
class Range:
    """``range``: ``pipe.decl`` names the element's variable(s) (``$v`` or ``$i, $v``)."""

    pipe: Pipeline
    body: Body
    otherwise: Body | None
    pos: int


@dataclass(frozen=True, slots=True)
class Include:
    """``{{ template "name" pipeline }}`` (and the call half of ``block``)."""

    name: str
    pipe: Pipeline | None
    pos: int


@dataclass(frozen=True, slots=True)
class Break:
    pos: int


@dataclass(frozen=True, slots=True)
class Continue:
    pos: int


Item = Text | Action | If | Range | Include | Break | Continue
Body = tuple[Item, ...]


@dataclass(frozen=True)
class Document:
    """One named template: where it comes from (``file``, whose ``source`` its positions are in)."""

    name: str
    file: str
    source: str
    body: Body
    pos: int = 0

    def line(self, pos: int) -> int:
        return self.source.count("\n", 0, pos) + 1


class DuplicateTemplate(ExprError):
    """A name defined twice in one set (two files, or a file and a ``define``)."""


@dataclass
class TemplateSet:
    """Named templates: each file by its name, and every ``define`` of every file (one namespace)."""

    templates: dict[str, Document] = field(default_factory=dict)

    def add(self, name: str, source: str, *, limit: int = MAX_TEMPLATE) -> None:
        """Parse ``source`` as the template ``name`` (a file), with what it defines; ExprError if it does
        not parse or defines a name already taken."""
        docs = parse_document(name, source, limit=limit)
        for doc in docs:
            if doc.name in self.templates:
                other = self.templates[doc.name]
                raise DuplicateTemplate(f"template {doc.name!r} is already defined in {other.file}, line "
                                        f"{other.line(other.pos)}", pos=doc.pos)
        for doc in docs:
            self.templates[doc.name] = doc

    def unknown_includes(self) -> Iterator[tuple[Document, Include]]:
        """Every ``{{ template "x" }}`` whose ``x`` is not in the set."""
        for doc in self.templates.values():
            for inc in _includes(doc.body):
                if inc.name not in self.templates:
                    yield doc, inc

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.templates), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""


def parse_document(name: str, source: str, *, limit: int = MAX_TEMPLATE) -> list[Document]:
    """The file's own template first, then each template it defines; ExprError at the first problem."""
    parser = _DocParser(name, source, split_template(source, limit=limit))
    body = parser.top()
    return [Document(name, name, source, body), *parser.defines]


def _includes(body: Body) -> Iterator[Include]:
    for item in body:
        if isinstance(item, Include):
            yield item
        elif isinstance(item, If):
            for _, b in item.branches:
                yield from _includes(b)
            if item.otherwise:
                yield from _includes(item.otherwise)
        elif isinstance(item, Range):
            yield from _includes(item.body)
            if item.otherwise:
                yield from _includes(item.otherwise)


@dataclass(frozen=True)
class _Stop:
    """What ended a list: ``end``, ``else`` (with the tokens after it), or the end of the file."""

    kind: str
    tokens: list[Token]
    pos: int


class _DocParser:
    def __init__(self, name: str, source: str, chunks: list[Chunk]) -> None:
        self.name = name
        self.source = source
        self.chunks = chunks
        self.i = 0
        self.defines: list[Document] = []
        #: declared variables, one set per enclosing block; ``$`` is always declared
        self.scopes: list[set[str]] = [{""}]
        self.loops = 0
        self.depth = 0

    def top(self) -> Body:
        body, stop = self.items(top=True)
        if stop.kind != "eof":
            raise ExprError(f"{{{{ {stop.kind} }}}} without an if, range, with, define or block to close", pos=stop.pos)
        return body

    def items(self, *, top: bool = False) -> tuple[Body, _Stop]:
        out: list[Item] = []
        while self.i < len(self.chunks):
            chunk = self.chunks[self.i]
            self.i += 1
            if not chunk.action:
                out.append(Text(chunk.text, chunk.pos))
                continue
            tokens = tokenize(chunk.text, chunk.pos)
            first = tokens[0]
            word = first.value if first.kind == "ident" and first.value in KEYWORDS else ""
            if word in ("end", "else"):
                if word == "end" and tokens[1].kind != "end":
                    raise ExprError(f"unexpected {_show(tokens[1])} after end", pos=tokens[1].pos)
                return tuple(out), _Stop(word, tokens[1:], first.pos)
            if word == "define" and not top:
                raise ExprError("define is allowed only at the top level of a file, outside any block",
                                pos=first.pos)
            if word == "define":
                self.define(tokens)
            elif word == "block":
                out.append(self.block(tokens))
            elif word:
                out.append(self.control(word, tokens))
            else:
                out.append(Action(self.pipeline(tokens, chunk.pos), chunk.pos))
        return tuple(out), _Stop("eof", [], len(self.source))

    # -- blocks -----------------------------------------------------------------------------------

    def control(self, word: str, tokens: list[Token]) -> Item:
        pos = tokens[0].pos
        if word in ("break", "continue"):
            if tokens[1].kind != "end":
                raise ExprError(f"unexpected {_show(tokens[1])} after {word}", pos=tokens[1].pos)
            if not self.loops:
                raise ExprError(f"{word} outside a range", pos=pos)
            return Break(pos) if word == "break" else Continue(pos)
        if word == "template":
            name, rest = self.name_of(tokens, "template")
            return Include(name, self.pipeline(rest, rest[0].pos) if rest[0].kind != "end" else None, pos)
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExprError(f"blocks nested deeper than {MAX_NESTING}", pos=pos)
        try:
            if word == "range":
                return self.range(tokens[1:], pos)
            return self.conditional(word, tokens[1:], pos)
        finally:
            self.depth -= 1

    def conditional(self, word: str, tokens: list[Token], pos: int) -> If:
        """``if`` or ``with``, with its ``else if``/``else with`` branches and ``else``."""
        branches: list[tuple[Pipeline, Body]] = []
        marks = len(self.scopes)
        stop = _Stop("else", [Token("ident", word, pos), *tokens], pos)
        while stop.kind == "else" and stop.tokens[0].kind == "ident" and stop.tokens[0].value == word:
            tokens = stop.tokens[1:]
            self.scopes.append(set())  # a variable declared in the condition lives to the end
            pipe = self.pipeline(tokens, tokens[0].pos, empty=word)
            body, stop = self.items()
            branches.append((pipe, body))
        otherwise = None
        if stop.kind == "else":
            if stop.tokens[0].kind != "end":
                raise ExprError(f"after else: end of action, or '{word}' (else {word} ...), not "
                                f"{_show(stop.tokens[0])}", pos=stop.tokens[0].pos)
            otherwise, stop = self.closed(word, pos)
            if stop.kind == "else":
                raise ExprError(f"a second else in this {word}", pos=stop.pos)
        self.expect_end(stop, word, pos)
        del self.scopes[marks:]
        return (With if word == "with" else If)(tuple(branches), otherwise, pos)

    def range(self, tokens: list[Token], pos: int) -> Range:
        self.scopes.append(set())
        pipe = self.pipeline(tokens, tokens[0].pos if tokens else pos, empty="range", decls=2)
        self.loops += 1
        body, stop = self.items()
        self.loops -= 1
        otherwise = None
        if stop.kind == "else":
            if stop.tokens[0].kind != "end":
                raise ExprError(f"after else in a range: end of action, not {_show(stop.tokens[0])}",
                                pos=stop.tokens[0].pos)
            otherwise, stop = self.closed("range", pos)
            if stop.kind == "else":
                raise ExprError("a second else in this range", pos=stop.pos)
        self.expect_end(stop, "range", pos)
        self.scopes.pop()
        return Range(pipe, body, otherwise, pos)

    def closed(self, word: str, pos: int) -> tuple[Body, _Stop]:
        self.scopes.append(set())
        try:
            return self.items()
        finally:
            self.scopes.pop()

    def define(self, tokens: list[Token]) -> None:
        name, rest = self.name_of(tokens, "define")
        if rest[0].kind != "end":
            raise ExprError(f"unexpected {_show(rest[0])} after the name in define", pos=rest[0].pos)
        self.defines.append(Document(name, self.name, self.source, self.own_body("define", tokens[0].pos),
                                     tokens[0].pos))

    def block(self, tokens: list[Token]) -> Include:
        """``{{ block "name" pipeline }}...{{ end }}``: define ``name`` and call it here."""
        name, rest = self.name_of(tokens, "block")
        pipe = self.pipeline(rest, rest[0].pos) if rest[0].kind != "end" else None
        self.defines.append(Document(name, self.name, self.source, self.own_body("block", tokens[0].pos),
                                     tokens[0].pos))
        return Include(name, pipe, tokens[0].pos)

    def own_body(self, word: str, pos: int) -> Body:
        """A defined template's body: its variables are its own (only ``$``), as in Go."""
        outer, loops = self.scopes, self.loops
        self.scopes, self.loops = [{""}], 0
        try:
            body, stop = self.items()
        finally:
            self.scopes, self.loops = outer, loops
        if stop.kind == "else":
            raise ExprError(f"else without if, with or range (in this {word})", pos=stop.pos)
        self.expect_end(stop, word, pos)
        return body

    def expect_end(self, stop: _Stop, word: str, pos: int) -> None:
        if stop.kind != "end":
            raise ExprError(f"this {word} is not closed by {{{{ end }}}}", pos=pos)

    def name_of(self, tokens: list[Token], word: str) -> tuple[str, list[Token]]:
        if tokens[1].kind != "string":
            raise ExprError(f"{word} takes a template name in quotes: {{{{ {word} \"name\" ... }}}}",
                            pos=tokens[1].pos)
        return tokens[1].value, tokens[2:]

    # -- actions ----------------------------------------------------------------------------------

    def pipeline(self, tokens: list[Token], pos: int, *, empty: str = "", decls: int = 1) -> Pipeline:
        if empty and (not tokens or tokens[0].kind == "end"):
            raise ExprError(f"{empty} needs a value to test: {{{{ {empty} .x }}}}", pos=pos)
        try:
            pipe = parse_tokens(tokens, pos, variables=True, decls=decls)
        except ExprError as exc:
            raise _hinted(exc, tokens) from None
        for var in _vars(pipe):
            if not any(var.name in scope for scope in self.scopes):
                raise ExprError(f"undefined variable ${var.name}", pos=var.pos)
        for name in pipe.decl:
            if pipe.assign:
                if not any(name in scope for scope in self.scopes):
                    raise ExprError(f"undefined variable ${name}: declare it first with ${name} := ...",
                                    pos=pipe.pos)
            else:
                self.scopes[-1].add(name)
        return pipe


def _hinted(exc: ExprError, tokens: list[Token]) -> ExprError:
    """A bare name where a value was meant (Jinja2's ``{{ name }}``): say how Go reads a variable."""
    first = tokens[0] if tokens else None
    if first is not None and first.kind == "ident" and first.value not in FUNCTIONS and exc.pos == first.pos \
            and exc.message.startswith("unknown function") and "did you mean" not in exc.message:
        name = first.value
        if tokens[1].kind == "field" and tokens[1].value and tokens[1].pos == first.pos + len(name):
            name += "." + tokens[1].value  # host.name
        return ExprError(f"{first.value!r} is not a function; to print a variable write {{{{ .{name} }}}} "
                         "(templates ending in .tmpl are Go templates; Jinja2 templates end in .j2)", pos=exc.pos)
    return exc


def _vars(node: Node) -> Iterator[Var]:
    if isinstance(node, Var):
        yield node
    elif isinstance(node, Pipeline):
        for c in node.commands:
            yield from _vars(c)
    elif isinstance(node, Call):
        for a in node.args:
            yield from _vars(a)
    elif isinstance(node, Sub):
        yield from _vars(node.pipeline)


def _show(tok: Token) -> str:
    return "end of action" if tok.kind == "end" else repr(tok.value)

