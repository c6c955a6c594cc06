"""A conservative parser of POSIX sh (and common bash) command lines into every simple command they run.

Pure. It finds each command in lists (``;``, ``&``, ``&&``, ``||``, newlines), pipelines, subshells,
``{ ...; }`` groups, ``if``/``while``/``until``/``for``/``case`` bodies, function bodies, ``$(...)``,
backticks, ``<(...)``, here-documents and ``[[ ... ]]``; quotes, escapes and ``$'...'`` are removed
as the shell would. A word the shell would expand (``$x``, ``${x}``, globs, braces) is kept as
*unknown*, with the literal prefix it is sure to start with. Anything else (``coproc``, arithmetic
holding command substitutions, unbalanced quotes) raises :class:`Unparseable`: the policy refuses
what it cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from smallyi.policy import bindings


class Unparseable(ValueError):
    """The command line uses something this parser does not understand; the policy refuses it."""


@dataclass(frozen=True, slots=True)
class Word:
    """A shell word after quote removal: ``text`` if ``known``, else only ``prefix`` is certain."""

    text: str
    known: bool = True
    prefix: str = ""
    raw: str = ""

    @classmethod
    def literal(cls, text: str) -> Word:
        return cls(text, True, text, text)

    def show(self) -> str:
        return self.text if self.known else (self.raw or self.prefix + "…")


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command: its words, where it writes (output redirections), and why it is opaque."""

    argv: tuple[Word, ...]
    redirects: tuple[Word, ...] = ()
    #: set when the command runs code the policy cannot see (a script, stdin, an interpreter)
    opaque: str = ""
    #: more arguments of unknown value are added when it runs (xargs, find -exec)
    open_args: bool = False
    #: only a ``trust`` pattern lifts its opacity, not an allow pattern (``sed *`` must not admit ``s///e``)
    needs_trust: bool = False
    #: how it was reached: "inside $(...)", "via sudo", ...
    via: str = ""
    #: variables set before it (``LD_PRELOAD=/x.so uptime``), or by a bare assignment (no argv)
    assigns: tuple[str, ...] = ()

    @property
    def name(self) -> Word:
        return self.argv[0]

    def show(self) -> str:
        shown = " ".join(w.show() for w in self.argv)
        if not shown and self.assigns:
            return " ".join(f"{n}=..." for n in self.assigns)
        return shown or "(redirection only)"

    def with_via(self, via: str) -> Command:
        return replace(self, via=f"{via}, {self.via}" if self.via else via)


def assignment(w: Word, *, as_typed: bool = False) -> str:
    """The variable a ``NAME=value`` (``NAME+=``, ``NAME[i]=``) word sets; else "".

    ``as_typed``: as the shell reads it (quoted, it is a word); else as a program sees its argument
    (``sudo "FOO=1" cmd`` still sets FOO).
    """
    m = _ASSIGN.match(w.raw if as_typed else (w.text if w.known else w.raw))
    return m.group(0).split("[", 1)[0].rstrip("+=") if m else ""


_META = set(" \t\n;&|()<>")
_RESERVED_SKIP = {"if", "then", "elif", "else", "fi", "do", "done", "while", "until", "{", "}", "!"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PINNED = re.compile(r"\$(?:\{(SY_[A-Za-z0-9_]+)\}|(SY_[A-Za-z0-9_]+))")
#: zsh lets ``typeset +r`` take readonly off a plain variable: a command that does so keeps no pins
_UNPIN = re.compile(r"\b(?:typeset|declare|local|readonly|export|integer|float|private)\b[^\n;&|]*\s\+[A-Za-z]*r")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_OPS = ("&&", "||", ";;&", ";;", ";&", "|&", "&", "|", ";", "(", ")", "\n")
_REDIRS = ("&>>", "&>", ">>", ">|", ">&", "<<<", "<<-", "<<", "<&", "<>", ">", "<")
_ANSI = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b",
         "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}


@dataclass
class _WordBuf:
    parts: list[str] = field(default_factory=list)
    known: bool = True
    prefix_done: bool = False
    prefix: list[str] = field(default_factory=list)

    def lit(self, s: str) -> None:
        self.parts.append(s)
        if not self.prefix_done:
            self.prefix.append(s)

    def unknown(self) -> None:
        self.known = False
        self.prefix_done = True

    def word(self, raw: str) -> Word:
        text = "".join(self.parts)
        return Word(text, self.known, text if self.known else "".join(self.prefix), raw)


class _Parser:
    def __init__(self, text: str, depth: int = 0, pins: Mapping[str, str] | None = None) -> None:
        if depth > 20:
            raise Unparseable("commands nested more than 20 levels deep")
        self.s = text
        self.i = 0
        self.depth = depth
        #: variables this shell pinned on its first line (``bindings``): "$SY_X" in double quotes is known
        self.pins: Mapping[str, str] = pins or {}
        self.out: list[Command] = []
        self._heredocs: list[tuple[str, bool, bool]] = []

    # -- characters ------------------------------------------------------------------------------

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def eof(self) -> bool:
        return self.i >= len(self.s)

    def skip_blanks(self) -> None:
        while not self.eof():
            c = self.s[self.i]
            if c in " \t":
                self.i += 1
            elif self.s.startswith("\\\n", self.i):
                self.i += 2
            elif c == "#":
                while not self.eof() and self.s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def op(self) -> str | None:
        for o in _OPS:
            if self.s.startswith(o, self.i):
                return o
        return None

    # -- nested code -----------------------------------------------------------------------------

    def sub(self, text: str, via: str) -> None:
        """Parse ``text`` as its own command line; its commands count as ours."""
        p = _Parser(text, self.depth + 1, self.pins)
        p.parse_all()
        self.out.extend(c.with_via(via) for c in p.out)

    def sub_until_paren(self, via: str) -> None:
        """Parse from here to the matching ``)`` (consumed)."""
        p = _Parser(self.s, self.depth + 1, self.pins)
        p.i = self.i
        end = p.parse_list(stops={")"}, stop_words=set())
        if end != ")":
            raise Unparseable(f"'(' {via} is never closed")
        self.i = p.i
        self.out.extend(c.with_via(via) for c in p.out)

    def backtick(self) -> str:
        """From after an opening backtick to after the closing one; returns the inner text."""
        buf = []
        while True:
            if self.eof():
                raise Unparseable("unterminated backtick")
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s) and self.s[self.i + 1] in "`$\\":
                buf.append(self.s[self.i + 1])
                self.i += 2
                continue
            self.i += 1
            if c == "`":
                return "".join(buf)
            buf.append(c)

    def braced(self) -> None:
        """``${...}`` from after ``${``: skip to the matching brace, parsing substitutions inside."""
        depth = 1
        while True:
            if self.eof():
                raise Unparseable("unterminated ${")
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
                continue
            if c == "'":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise Unparseable("unterminated quote inside ${...}")
                self.i = end + 1
                continue
            if self.s.startswith("$(", self.i) or c == "`" or self.s.startswith("${", self.i):
                self.dollar_or_backtick(_WordBuf())
                continue
            self.i += 1
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return

    def arithmetic(self, close: str) -> None:
        """Skip an arithmetic expression up to ``close``; command substitution inside is refused."""
        depth = 0
        start = self.i
        while not self.eof():
            if self.s.startswith(close, self.i) and depth == 0:
                body = self.s[start:self.i]
                if "`" in body or "$(" in body:
                    raise Unparseable("command substitution inside arithmetic is not supported")
                self.i += len(close)
                return
            c = self.s[self.i]
            depth += c == "("
            depth -= c == ")"
            self.i += 1
        raise Unparseable("unterminated arithmetic expression")

    def dollar_or_backtick(self, w: _WordBuf, *, quoted: bool = False) -> None:
        """At ``$`` or a backtick: an expansion (unknown) or a plain ``$``; a pinned variable in double
        quotes is its value (unquoted, the shell would split it on an ``IFS`` the command may have set)."""
        s = self.s
        pinned = _PINNED.match(s, self.i) if quoted and self.pins else None
        if pinned is not None and (pinned.group(1) or pinned.group(2)) in self.pins:
            w.lit(self.pins[pinned.group(1) or pinned.group(2)])
            self.i = pinned.end()
            return
        if s[self.i] == "`":
            self.i += 1
            self.sub(self.backtick(), "inside `...`")
            w.unknown()
            return
        nxt = s[self.i + 1:self.i + 2]
        if s.startswith("$((", self.i):
            self.i += 3
            self.arithmetic("))")
            w.unknown()
        elif nxt == "(":
            self.i += 2
            self.sub_until_paren("inside $(...)")
            w.unknown()
        elif nxt == "{":
            self.i += 2
            self.braced()
            w.unknown()
        elif nxt and (_NAME.match(nxt) or nxt in "0123456789@*#?$!-"):
            self.i += 1
            if nxt.isdigit() or nxt in "@*#?$!-":
                self.i += 1
            else:
                self.i += len(_NAME.match(s, self.i).group(0))  # type: ignore[union-attr]
            w.unknown()
        elif nxt == "[":
            raise Unparseable("$[...] arithmetic is not supported")
        else:
            self.i += 1
            w.lit("$")

    # -- words -----------------------------------------------------------------------------------

    def word(self, *, in_test: bool = False) -> Word | None:
        """The next word (None at an operator or the end). ``in_test``: inside ``[[ ]]``."""
        s = self.s
        start = self.i
        w = _WordBuf()
        glob = False
        while not self.eof():
            c = s[self.i]
            if (c in " \t\n" or s.startswith("]]", self.i)) if in_test else c in _META:
                break
            if c == "\\":
                if s.startswith("\\\n", self.i):
                    self.i += 2
                    continue
                if self.i + 1 >= len(s):
                    raise Unparseable("a backslash ends the command")
                w.lit(s[self.i + 1])
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise Unparseable("unterminated single quote")
                w.lit(s[self.i + 1:end])
                self.i = end + 1
            elif s.startswith("$'", self.i):
                self.i += 2
                w.lit(self.ansi_c())
            elif s.startswith('$"', self.i):
                self.i += 1
            elif c == '"':
                self.i += 1
                self.dquote(w)
            elif c in "$`":
                self.dollar_or_backtick(w)
            elif c in "*?" or (c == "[" and "]" in s[self.i + 1:self._word_end()] and self.i > start) or (c == "{" and self._brace_expansion()):
                glob = True
                w.lit(c)
                self.i += 1
            else:
                w.lit(c)
                self.i += 1
        if self.i == start:
            return None
        if glob:
            w.unknown()
        return w.word(s[start:self.i])

    def _word_end(self) -> int:
        j = self.i
        while j < len(self.s) and self.s[j] not in _META:
            j += 1
        return j

    def _brace_expansion(self) -> bool:
        end = self._word_end()
        body = self.s[self.i:end]
        close = body.find("}")
        return close > 0 and ("," in body[:close] or ".." in body[:close])

    def dquote(self, w: _WordBuf) -> None:
        s = self.s
        while True:
            if self.eof():
                raise Unparseable("unterminated double quote")
            c = s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\" and s[self.i + 1:self.i + 2] in ('$', '`', '"', "\\", "\n"):
                if s[self.i + 1] != "\n":
                    w.lit(s[self.i + 1])
                self.i += 2
            elif c in "$`":
                self.dollar_or_backtick(w, quoted=True)
            else:
                w.lit(c)
                self.i += 1

    def ansi_c(self) -> str:
        s, out = self.s, list[str]()
        while True:
            if self.eof():
                raise Unparseable("unterminated $'...'")
            c = s[self.i]
            if c == "'":
                self.i += 1
                return "".join(out)
            if c != "\\":
                out.append(c)
                self.i += 1
                continue
            e = s[self.i + 1:self.i + 2]
            self.i += 2
            if e in _ANSI:
                out.append(_ANSI[e])
            elif e in "xuU":
                n = {"x": 2, "u": 4, "U": 8}[e]
                m = re.match(f"[0-9A-Fa-f]{{1,{n}}}", s[self.i:])
                if not m:
                    out.append("\\" + e)
                    continue
                out.append(chr(int(m.group(0), 16)))
                self.i += len(m.group(0))
            elif e.isdigit() and e in "01234567":
                m = re.match(r"[0-7]{0,2}", s[self.i:])
                digits = e + (m.group(0) if m else "")
                out.append(chr(int(digits, 8) & 0xFF))
                self.i += len(digits) - 1
            elif e == "c":
                out.append(chr(ord(s[self.i:self.i + 1] or "@") & 0x1F))
                self.i += 1
            else:
                out.append("\\" + e)

    # -- commands --------------------------------------------------------------------------------

    def redirect(self) -> tuple[str, Word | None] | None:
        """At a redirection operator: (operator, target or None for a here-doc / fd duplication)."""
        for r in _REDIRS:
            if self.s.startswith(r, self.i):
                self.i += len(r)
                break
        else:
            return None
        if r in ("<(", ">("):  # pragma: no cover - handled as process substitution
            return None
        self.skip_blanks()
        if self.peek() == "(" and r in ("<", ">"):
            self.i += 1
            self.sub_until_paren(f"inside {r}(...)")
            return r, Word("", False, "", f"{r}(...)")
        target = self.word()
        if target is None:
            raise Unparseable(f"redirection {r} has no target")
        if r in ("<<", "<<-"):
            quoted = target.raw != target.text or "\\" in target.raw
            self._heredocs.append((target.text, quoted, r == "<<-"))
            return r, None
        if r in (">&", "<&") and (target.text.isdigit() or target.text == "-"):
            return r, None
        return r, target

    def heredoc_bodies(self) -> None:
        """After a newline: consume pending here-documents, parsing substitutions in unquoted ones."""
        for delim, quoted, strip in self._heredocs:
            lines = []
            while True:
                if self.eof():
                    raise Unparseable(f"here-document ends before its delimiter {delim!r}")
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i:end]
                self.i = min(end + 1, len(self.s))
                if (line.lstrip("\t") if strip else line) == delim:
                    break
                lines.append(line)
            if not quoted:
                body = "\n".join(lines)
                p = _Parser(body, self.depth + 1, self.pins)
                p.dquote_body()
                self.out.extend(c.with_via("inside a here-document") for c in p.out)
        self._heredocs = []

    def dquote_body(self) -> None:
        w = _WordBuf()
        while not self.eof():
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
            elif c in "$`":
                self.dollar_or_backtick(w)
            else:
                self.i += 1

    def simple(self, stop_words: set[str]) -> str | None:
        """One simple command (or a control word); returns a stop word if one was met first."""
        argv: list[Word] = []
        redirects: list[Word] = []
        assigns: list[str] = []
        while True:
            self.skip_blanks()
            if self.eof():
                break
            if self.s[self.i].isdigit():
                j = self.i
                while j < len(self.s) and self.s[j].isdigit():
                    j += 1
                if j < len(self.s) and self.s[j] in "<>":
                    self.i = j
            if self.peek() in ("<", ">") or self.s.startswith("&>", self.i):
                if self.peek(2) in ("<(", ">("):
                    self.i += 2
                    self.sub_until_paren("inside a process substitution")
                    argv.append(Word("", False, "", "<(...)"))
                    continue
                got = self.redirect()
                if got and got[1] is not None and got[0] not in ("<", "<<<", "<&"):
                    redirects.append(got[1])
                continue
            if self.op() is not None:
                if not argv and self.peek(2) == "((":
                    self.i += 2
                    self.arithmetic("))")
                    continue
                if argv and self.peek(2) == "()" and len(argv) == 1:  # name() { body }: a function
                    self.i += 2
                    argv = []
                    continue
                break
            if not argv and self.peek(2) == "[[":
                self.i += 2
                argv.append(Word.literal("[["))
                while True:
                    self.skip_blanks()
                    if self.s.startswith("]]", self.i):
                        self.i += 2
                        break
                    if self.eof():
                        raise Unparseable("[[ is never closed with ]]")
                    w = self.word(in_test=True)
                    if w is None:
                        self.i += 1
                        continue
                    argv.append(w)
                continue
            w = self.word()
            if w is None:
                break
            if not argv:
                if w.known and w.text in stop_words:
                    return w.text
                if w.known and w.raw == w.text and w.text in _RESERVED_SKIP:
                    continue
                if w.known and w.raw == w.text and w.text in ("for", "select"):
                    self.for_header()
                    continue
                if w.known and w.raw == w.text and w.text == "case":
                    self.case()
                    continue
                if w.known and w.raw == w.text and w.text == "function":
                    self.skip_blanks()
                    self.word()
                    self.skip_blanks()
                    if self.peek(2) == "()":
                        self.i += 2
                    continue
                if w.known and w.raw == w.text and w.text == "coproc":
                    raise Unparseable("coproc is not supported")
                if _ASSIGN.match(w.raw) and "=" in w.text:
                    assigns.append(assignment(w, as_typed=True))
                    continue  # VAR=value before the command (its substitutions were parsed)
            argv.append(w)
        if argv or redirects or assigns:
            self.out.append(Command(tuple(argv), tuple(redirects), assigns=tuple(assigns)))
        return None

    def for_header(self) -> None:
        self.skip_blanks()
        if self.peek(2) == "((":
            self.i += 2
            self.arithmetic("))")
            return
        if self.word() is None:
            raise Unparseable("for without a variable name")
        self.skip_blanks()
        save = self.i
        w = self.word()
        if w is None or w.text != "in":
            self.i = save
            return
        while True:
            self.skip_blanks()
            if self.eof() or self.op() is not None:
                return
            self.word()

    def case(self) -> None:
        self.skip_blanks()
        if self.word() is None:
            raise Unparseable("case without a word")
        self._skip_space_newlines()
        w = self.word()
        if w is None or w.text != "in":
            raise Unparseable("case without 'in'")
        while True:
            self._skip_space_newlines()
            if self.eof():
                raise Unparseable("case is never closed with esac")
            save = self.i
            w = self.word()
            if w is not None and w.known and w.text == "esac":
                return
            self.i = save
            if self.peek() == "(":
                self.i += 1
            while True:  # patterns up to ")"
                self.skip_blanks()
                if self.peek() == ")":
                    self.i += 1
                    break
                if self.peek() == "|":
                    self.i += 1
                    continue
                if self.word() is None:
                    raise Unparseable("a case pattern is never closed with )")
            end = self.parse_list(stops={";;", ";&", ";;&"}, stop_words={"esac"})
            if end == "esac":
                return
            if end == "":
                raise Unparseable("case is never closed with esac")

    def _skip_space_newlines(self) -> None:
        while True:
            self.skip_blanks()
            if self.peek() == "\n":
                self.i += 1
                self.heredoc_bodies()
                continue
            return

    def parse_list(self, *, stops: set[str], stop_words: set[str]) -> str:
        """Commands until one of ``stops`` (an operator, consumed), a stop word, or the end (``""``)."""
        while True:
            self.skip_blanks()
            if self.eof():
                return ""
            o = self.op()
            if o is not None:
                if o in stops:
                    self.i += len(o)
                    return o
                if o == ")":
                    raise Unparseable("unexpected ')'")
                if o in (";;", ";&", ";;&"):
                    raise Unparseable(f"unexpected '{o}' outside case")
                self.i += len(o)
                if o == "\n":
                    self.heredoc_bodies()
                elif o == "(":
                    if self.peek() == "(":
                        self.i += 1
                        self.arithmetic("))")
                    else:
                        self.sub_until_paren("inside a subshell")
                continue
            stop = self.simple(stop_words)
            if stop is not None:
                return stop

    def parse_all(self) -> None:
        end = self.parse_list(stops=set(), stop_words=set())
        if end:
            raise Unparseable(f"unexpected {end!r}")
        if self._heredocs:
            raise Unparseable("a here-document has no body")


def parse(text: str, *, fresh: bool = True) -> list[Command]:
    """Every simple command ``text`` would run, nested ones included (in no particular order).

    ``fresh``: ``text`` is all a new shell runs (a command sent to a host, ``sh -c``'s string), so the
    values its first line pins (``bindings``) hold in it; not for ``eval``'d text or terminal lines,
    which run in a shell that may have pinned other values already.
    """
    if "\x00" in text:
        raise Unparseable("the command contains a NUL byte")
    pins, start = bindings.split(text) if fresh else ({}, 0)
    if pins and _UNPIN.search(text, start):
        pins = {}
    p = _Parser(text, pins=pins)
    p.i = start
    p.parse_all()
    return p.out
