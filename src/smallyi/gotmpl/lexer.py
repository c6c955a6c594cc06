"""Splitting template text into literal text and ``{{ ... }}`` actions, and actions into tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from smallyi.errors import InputError

#: the longest template accepted by default (a SOP field, a message); longer text is refused, not cut
MAX_TEMPLATE = 64 * 1024
#: what Go's trim markers ``{{-`` and ``-}}`` take away, and what must stand between them and the action
_SPACE = " \t\r\n"

TokenKind = Literal["field", "var", "ident", "string", "number", "pipe", "lparen", "rparen", "declare",
                    "assign", "comma", "end"]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


class ExprError(InputError):
    """An expression that does not parse or evaluate; ``pos`` is the 0-based offset in its template."""

    code = "invalid_expression"

    def __init__(self, message: str, *, pos: int = 0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    value: str
    pos: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of template: literal ``text``, or the source of one action (``action`` True)."""

    text: str
    pos: int
    action: bool


def split_template(text: str, *, limit: int = MAX_TEMPLATE) -> list[Chunk]:
    """Literal text and action sources, honouring ``{{-`` / ``-}}`` whitespace trimming and quotes.

    Comments (``{{/* ... */}}``, ``{{- /* ... */ -}}``) are dropped, as Go drops them."""
    if len(text) > limit:
        raise ExprError(f"the template is {len(text)} characters; at most {limit} are accepted")
    chunks: list[Chunk] = []
    i, n = 0, len(text)
    trim_next = False
    while i < n:
        start = text.find("{{", i)
        literal = text[i:] if start < 0 else text[i:start]
        if trim_next:
            literal = literal.lstrip(_SPACE)
        trim_left = start >= 0 and text.startswith("{{-", start) and text[start + 3:start + 4] in tuple(_SPACE)
        if trim_left:
            literal = literal.rstrip(_SPACE)
        if literal:
            chunks.append(Chunk(literal, i, False))
        if start < 0:
            break
        body_start = start + (3 if trim_left else 2)
        if text.startswith("/*", body_start + (1 if trim_left else 0)):
            i, trim_next = _comment_end(text, body_start + (1 if trim_left else 0))
            continue
        end = _action_end(text, body_start)
        body_end = end
        trim_next = False
        if text[end - 1:end] == "-" and end - 2 >= body_start and text[end - 2] in _SPACE:
            body_end, trim_next = end - 1, True
        chunks.append(Chunk(text[body_start:body_end], body_start, True))
        i = end + 2
    return chunks


def _comment_end(text: str, start: int) -> tuple[int, bool]:
    """After the comment opened by ``/*`` at ``start``: the offset past its ``}}``, and whether it trims."""
    close = text.find("*/", start + 2)
    if close < 0:
        raise ExprError("a comment /* is not closed by */", pos=start)
    j = close + 2
    if text.startswith("}}", j):
        return j + 2, False
    if text[j:j + 1] in tuple(_SPACE) and text.startswith("-}}", j + 1):
        return j + 4, True
    raise ExprError("a comment must end with */}} (or */ -}}); nothing may follow it in its action", pos=close)


def _action_end(text: str, i: int) -> int:
    """The offset of the ``}}`` closing the action starting at ``i`` (quotes may contain ``}}``)."""
    quote, opened = "", 0
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"`":
            quote, opened = c, i
        elif text.startswith("}}", i):
            return i
        i += 1
    if quote:
        raise ExprError(f"a string opened with {quote} is not closed", pos=opened)
    raise ExprError("an action '{{' is not closed by '}}'", pos=max(0, i - 1))


#: the one-character tokens, by kind
_PUNCTUATION: dict[str, TokenKind] = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}


def tokenize(src: str, offset: int = 0) -> list[Token]:
    """The tokens of one action's source; positions are offsets in the whole template."""
    out: list[Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        pos = offset + i
        if c in " \t\r\n":
            i += 1
        elif c in _PUNCTUATION:
            out.append(Token(_PUNCTUATION[c], c, pos))
            i += 1
        elif c == ":" and src.startswith(":=", i):
            out.append(Token("declare", ":=", pos))
            i += 2
        elif c == "$":
            m = _IDENT.match(src, i + 1)
            name = m.group() if m else ""
            parts, j = _fields(src, i + 1 + len(name))
            out.append(Token("var", ".".join([name, *parts]), pos))
            i = j
        elif c == ".":
            parts, j = _fields(src, i)
            if not parts:
                if j + 1 < n and not src[j + 1].isspace() and src[j + 1] not in "|),":
                    raise ExprError(f"{src[j + 1]!r} cannot follow '.': field names are letters, digits and '_'",
                                    pos=offset + j + 1)
                j += 1
            out.append(Token("field", ".".join(parts), pos))
            i = j
        elif c in "'\"`":
            value, i = _string(src, i, offset)
            out.append(Token("string", value, pos))
        elif c.isdigit() or (c == "-" and i + 1 < n and (src[i + 1].isdigit() or src[i + 1] == ".")):
            m = _NUMBER.match(src, i)
            if not m:
                raise ExprError(f"{src[i:i + 10]!r} is not a number", pos=pos)
            out.append(Token("number", m.group(), pos))
            i = m.end()
        elif c.isascii() and (c.isalpha() or c == "_"):
            m = _IDENT.match(src, i)
            assert m is not None
            out.append(Token("ident", m.group(), pos))
            i = m.end()
        else:
            raise ExprError(f"unexpected character {c!r} in an action", pos=pos)
    out.append(Token("end", "", offset + n))
    return out


def _fields(src: str, j: int) -> tuple[list[str], int]:
    """The names of a ``.a.b`` chain starting at ``j``, and the offset after it."""
    parts: list[str] = []
    while j < len(src) and src[j] == ".":
        m = _IDENT.match(src, j + 1)
        if not m:
            break
        parts.append(m.group())
        j = m.end()
    return parts, j


def _string(src: str, i: int, offset: int) -> tuple[str, int]:
    quote = src[i]
    j = i + 1
    buf: list[str] = []
    while j < len(src):
        c = src[j]
        if c == quote:
            return "".join(buf), j + 1
        if c == "\\" and quote != "`":
            if j + 1 >= len(src):
                break
            esc = src[j + 1]
            if esc not in _ESCAPES:
                raise ExprError(f"unknown escape \\{esc} in a string", pos=offset + j)
            buf.append(_ESCAPES[esc])
            j += 2
            continue
        buf.append(c)
        j += 1
    raise ExprError(f"a string opened with {quote} is not closed", pos=offset + i)
