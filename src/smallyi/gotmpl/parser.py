"""Actions into a small tree: a pipeline of commands, each a function call or one operand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smallyi.gotmpl.functions import FUNCTIONS
from smallyi.gotmpl.lexer import ExprError, Token, split_template, tokenize

__all__ = ["Call", "ExprError", "Field", "Literal", "Node", "Pipeline", "Sub", "Var", "parse_action", "parse_chunks"]

#: deepest nesting of parentheses accepted (a guard against pathological input)
MAX_DEPTH = 32
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "nil": None, "null": None, "none": None}


@dataclass(frozen=True, slots=True)
class Field:
    """``.a.b`` read from the context (``path`` empty: the whole context, ``.``)."""

    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Var:
    """``$x.a.b``: a variable, then optional fields of its value (``name`` empty: ``$``, the data)."""

    name: str
    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class Sub:
    """``(pipeline).a.b``: a parenthesised pipeline, then optional fields of its value."""

    pipeline: Pipeline
    path: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Pipeline:
    commands: tuple[Node, ...]
    pos: int
    #: the variables it declares (``$x := ...``; two in ``range $i, $v := ...``) or assigns (``$x = ...``)
    decl: tuple[str, ...] = ()
    assign: bool = False


Node = Field | Var | Literal | Sub | Call | Pipeline


def parse_chunks(text: str) -> list[str | Pipeline]:
    """A template as literal strings and parsed actions, in order."""
    out: list[str | Pipeline] = []
    for chunk in split_template(text):
        if chunk.action:
            out.append(parse_action(chunk.text, chunk.pos))
        else:
            out.append(chunk.text)
    return out


def parse_action(src: str, offset: int = 0, *, variables: bool = False, decls: int = 0) -> Pipeline:
    """One action's pipeline; ``variables`` allows ``$x``, and ``decls`` that many declared first."""
    return parse_tokens(tokenize(src, offset), offset, variables=variables, decls=decls)


def parse_tokens(tokens: list[Token], offset: int = 0, *, variables: bool = False, decls: int = 0) -> Pipeline:
    parser = _Parser(tokens, variables=variables)
    if parser.peek().kind == "end":
        raise ExprError("an empty action {{ }}", pos=offset)
    names, assign = parser.declaration(decls) if variables else ((), False)
    pipe = parser.pipeline(0)
    tok = parser.peek()
    if tok.kind != "end":
        raise ExprError(f"unexpected {_show(tok)} after the pipeline", pos=tok.pos)
    return Pipeline(pipe.commands, pipe.pos, names, assign) if names else pipe


def _known(tok: Token) -> None:
    if tok.value not in FUNCTIONS:
        import difflib

        close = difflib.get_close_matches(tok.value, list(FUNCTIONS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(FUNCTIONS))}"
        raise ExprError(f"unknown function {tok.value!r}{hint}", pos=tok.pos)


def _show(tok: Token) -> str:
    return {"end": "end of action", "pipe": "'|'", "lparen": "'('", "rparen": "')'", "field": repr("." + tok.value),
            "var": repr("$" + tok.value)}.get(tok.kind, repr(tok.value))


class _Parser:
    def __init__(self, tokens: list[Token], *, variables: bool = False) -> None:
        self.tokens = tokens
        self.i = 0
        self.variables = variables

    def declaration(self, most: int) -> tuple[tuple[str, ...], bool]:
        """``$x :=``, ``$x =`` or (``most`` 2: ``range``) ``$i, $v :=`` at the start; the names and whether
        it assigns. Nothing is taken when the action does not start so."""
        names: list[str] = []
        j = self.i
        while self.tokens[j].kind == "var" and "." not in self.tokens[j].value and self.tokens[j].value:
            names.append(self.tokens[j].value)
            if self.tokens[j + 1].kind != "comma":
                break
            j += 2
        else:
            return (), False
        op = self.tokens[j + 1]
        if op.kind not in ("declare", "assign"):
            if len(names) > 1:
                raise ExprError(f"expected ':=' after ${', $'.join(names)}", pos=op.pos)
            return (), False
        if len(names) > max(most, 1):
            raise ExprError("only range declares two variables ($i, $v := ...)", pos=self.tokens[self.i].pos)
        if op.kind == "assign" and len(names) > 1:
            raise ExprError("assign one variable at a time ($x = ...)", pos=op.pos)
        self.i = j + 2
        return tuple(names), op.kind == "assign"

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def pipeline(self, depth: int) -> Pipeline:
        if depth > MAX_DEPTH:
            raise ExprError(f"parentheses nested deeper than {MAX_DEPTH}", pos=self.peek().pos)
        start = self.peek().pos
        commands = [self.command(depth, first=True)]
        while self.peek().kind == "pipe":
            self.take()
            cmd = self.command(depth, first=False)
            commands.append(cmd)
        return Pipeline(tuple(commands), start)

    def command(self, depth: int, *, first: bool) -> Node:
        tok = self.peek()
        if tok.kind == "ident" and tok.value not in _CONSTANTS:
            self.take()
            _known(tok)
            args: list[Node] = []
            while self.peek().kind not in ("pipe", "rparen", "end"):
                args.append(self.operand(depth))
            return Call(tok.value, tuple(args), tok.pos)
        if not first:
            raise ExprError(f"after '|' comes a function name, not {_show(tok)}", pos=tok.pos)
        node = self.operand(depth)
        nxt = self.peek()
        if nxt.kind not in ("pipe", "rparen", "end"):
            raise ExprError(f"{_show(nxt)} follows a value; only a function takes arguments "
                            "(write: function arg1 arg2)", pos=nxt.pos)
        return node

    def operand(self, depth: int) -> Node:
        tok = self.take()
        if tok.kind == "field":
            return Field(tuple(tok.value.split(".")) if tok.value else (), tok.pos)
        if tok.kind == "var":
            if not self.variables:
                raise ExprError(f"variables (${tok.value.split('.')[0]}) cannot be used here", pos=tok.pos)
            name, *names = tok.value.split(".")
            return Var(name, tuple(names), tok.pos)
        if tok.kind == "string":
            return Literal(tok.value, tok.pos)
        if tok.kind == "number":
            text = tok.value
            value: Any = float(text) if any(c in text for c in ".eE") else int(text)
            return Literal(value, tok.pos)
        if tok.kind == "ident":
            if tok.value in _CONSTANTS:
                return Literal(_CONSTANTS[tok.value], tok.pos)
            # a function used as an argument without parentheses: call it with no arguments
            _known(tok)
            return Call(tok.value, (), tok.pos)
        if tok.kind == "lparen":
            inner = self.pipeline(depth + 1)
            close = self.take()
            if close.kind != "rparen":
                raise ExprError(f"expected ')' but found {_show(close)}", pos=close.pos)
            path: tuple[str, ...] = ()
            nxt = self.peek()
            if nxt.kind == "field" and nxt.pos == close.pos + 1 and nxt.value:
                self.take()
                path = tuple(nxt.value.split("."))
            return Sub(inner, path, tok.pos)
        raise ExprError(f"expected a value but found {_show(tok)}", pos=tok.pos)
