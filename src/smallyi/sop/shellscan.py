"""Where each value lands in a shell command: the quoting around it, and whether bash would read it as a
number or as code there. Pure.

The command's text comes with holes (:func:`hole`) where values go. The reader follows sh and bash
syntax far enough to tell, for each hole:

- ``quote``: ``word`` (unquoted), ``dq`` (inside ``"..."``, an unquoted here-document, arithmetic),
  ``sq`` (inside ``'...'``, ``$'...'`` or a quoted here-document: the shell inserts nothing there) or
  ``comment``. This decides how a reference to the value is written (``"${X}"`` or ``${X}``); it
  never decides whether the value is data: a reference is data in every one of them.
- ``needs``: what bash does with the value there, when that is more than data. ``number``: it is
  evaluated as arithmetic (``$((...))``, ``((...))``, ``$[...]``, ``let``, ``declare -i``, ``[[ a -eq b
  ]]``, ``${v:offset}``, ``${a[i]}``, ``a[i]=``), where bash runs ``a[$(cmd)]``. ``code``: it is run as
  a command (``eval``, ``source``, ``trap``, the ``-c`` string of a shell, ``ssh``, ``watch``, the
  program a command or a wrapper runs, ``find -exec``, awk's and sed's program, ``python -c``,
  ``declare -a "a=(...)"``). ``name``: it names a variable to set or read (``printf -v``, ``read``,
  ``export NAME=``, ``${!v}``, ``[[ -v ]]``), which may be ``PATH`` or ``PS4``. Text in ``'...'`` that
  a shell runs (``sh -c '...'``, ``eval '...'``) is read again as that shell's code, so
  ``bash -c '(( X ))'`` is arithmetic too.

It is conservative and never fails: text it cannot follow still gets an answer per hole.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

_OPEN, _CLOSE = "\ue000", "\ue001"
_HOLE = re.compile(f"{_OPEN}([0-9]+){_CLOSE}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^=]*\])?\+?=")
_META = set(" \t\n;&|()<>")
SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox", "su", "runuser", "flock"})
#: commands whose arguments a shell runs (``trap`` only its first)
CODE_COMMANDS = frozenset({"eval", "source", ".", "trap", "ssh", "watch"})
#: builtins whose arguments name variables they set or read, with their options that take a value (``-v``
#: of printf and ``-a`` of read take a name)
NAME_TAKERS: dict[str, tuple[str, ...]] = {
    "printf": ("-v",), "read": ("-a", "-d", "-n", "-N", "-p", "-t", "-u"), "unset": (), "getopts": (),
    "mapfile": ("-d", "-n", "-O", "-s", "-u", "-C", "-c"), "readarray": ("-d", "-n", "-O", "-s", "-u", "-C", "-c"),
}
#: commands that run another program named by their arguments
WRAPPERS = frozenset({"sudo", "doas", "env", "nohup", "nice", "ionice", "chrt", "taskset", "timeout", "exec",
                      "command", "builtin", "time", "setsid", "stdbuf", "xargs", "strace", "ltrace", "unbuffer"})
#: programs whose script (``-e``/``-c``, or awk's and sed's first argument) is code: sed runs ``e``, awk ``system``
INTERPRETERS = frozenset({"awk", "gawk", "mawk", "nawk", "sed", "gsed", "node", "nodejs", "tclsh", "Rscript"})
DECLARES = frozenset({"declare", "typeset", "local", "readonly", "export"})
ARITH_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_RESERVED = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})


def _base(w: _Word) -> str:
    return w.raw.rsplit("/", 1)[-1]


def hole(n: int) -> str:
    """The text standing for value ``n`` in a command passed to :func:`scan`."""
    return f"{_OPEN}{n}{_CLOSE}"


def has_marks(text: str) -> bool:
    """True if ``text`` holds the characters holes are made of (such a template cannot be read)."""
    return _OPEN in text or _CLOSE in text


@dataclass
class Spot:
    """What the shell does at one hole."""

    quote: str = "word"
    #: "number: <where>" / "code: <where>" for each construct that reads the value as such
    needs: set[str] = field(default_factory=set)
    #: text inside '...' that a shell reads as code (sh -c '...'): the reference there is that shell's
    inner_shell: bool = False


@dataclass
class _Word:
    raw: str = ""
    holes: list[int] = field(default_factory=list)
    #: holes outside '...' (the shell substitutes the value there)
    live: list[int] = field(default_factory=list)
    #: the word as the command receives it, quotes removed, holes kept (code for a shell: sh -c's string)
    cooked: list[str] = field(default_factory=list)

    @property
    def value(self) -> str:
        return "".join(self.cooked)


def scan(text: str) -> dict[int, Spot]:
    """Every hole of ``text`` and what the shell does there."""
    spots: dict[int, Spot] = {}
    _Reader(text, spots, ()).code("")
    return spots


class _Reader:
    def __init__(self, text: str, spots: dict[int, Spot], needs: tuple[str, ...], *, again: bool = False,
                 created: list[int] | None = None) -> None:
        self.s = text
        self.i = 0
        self.spots = spots
        #: holes in the order they were first met (shared: what a $(...) added is the tail)
        self.created: list[int] = [] if created is None else created
        #: what every hole met here is read as (inherited: a $(...) inside $((...)) is a number too)
        self.needs = needs
        #: reading text a second time (as a nested shell's code): keep each hole's quote, add needs
        self.again = again
        self.heredocs: list[tuple[str, bool, bool]] = []
        self.int_names: set[str] = set()
        self.case_depth = 0

    # -- holes -----------------------------------------------------------------------------------

    def take_hole(self, quote: str, into: _Word | None = None) -> None:
        m = _HOLE.match(self.s, self.i)
        assert m is not None
        self.i = m.end()
        n = int(m.group(1))
        spot = self.spots.get(n)
        if spot is None:
            spot = self.spots[n] = Spot(quote)
            self.created.append(n)
        elif self.again:
            if quote != "sq":
                spot.inner_shell = True
        else:
            spot.quote = quote
        spot.needs.update(self.needs)
        if into is not None:
            into.holes.append(n)
            if quote != "sq":
                into.live.append(n)

    def at_hole(self) -> bool:
        return self.s.startswith(_OPEN, self.i) and _HOLE.match(self.s, self.i) is not None

    def at_hole_after(self, k: int) -> bool:
        return _HOLE.match(self.s, self.i + k) is not None

    def skip_escape(self) -> None:
        """Past a backslash and the character it escapes (never into a hole: a value is not a character)."""
        self.i += 1 if self.s.startswith(_OPEN, self.i + 1) else 2

    def single(self, w: _Word | None) -> str:
        """From a ``'`` past its closing one: the text inside, its holes recorded as literal ("sq")."""
        s = self.s
        end = s.find("'", self.i + 1)
        end = len(s) if end < 0 else end
        inner = s[self.i + 1:end]
        r = self.nested(inner, self.needs)
        while r.i < len(inner):
            if r.at_hole():
                r.take_hole("sq", w)
            else:
                r.i += 1
        self.i = end + 1
        return inner

    def nested(self, text: str, needs: tuple[str, ...], *, again: bool = False) -> _Reader:
        r = _Reader(text, self.spots, needs, again=again or self.again, created=self.created)
        r.int_names = self.int_names
        return r

    # -- commands ----------------------------------------------------------------------------------

    def code(self, stop: str) -> None:
        """Commands up to ``stop`` (")" or "`", consumed) or the end."""
        words: list[_Word] = []
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if stop == ")" and c == ")" and self.case_depth == 0:
                self.i += 1
                self.command(words)
                return
            if c in " \t":
                self.i += 1
            elif s.startswith("\\\n", self.i):
                self.i += 2
            elif c == "\n":
                self.i += 1
                self.command(words)
                words = []
                self.heredoc_bodies()
            elif c == "#":
                while self.i < len(s) and s[self.i] != "\n":
                    if self.at_hole():
                        self.take_hole("comment")
                    else:
                        self.i += 1
            elif c in ";&|":
                self.command(words)
                words = []
                self.i += 2 if s.startswith((";;", "&&", "||", ";&", "|&"), self.i) else 1
            elif c in "<>":
                self.redirect(words)
            elif c == "(":
                if not words and s.startswith("((", self.i):
                    self.i += 2
                    self.arithmetic("))", "((...))")
                elif words and words[-1].raw == "for" and s.startswith("((", self.i):
                    self.i += 2
                    self.arithmetic("))", "for ((...))")
                else:
                    self.i += 1
                    self.code(")")
            elif c == ")":
                self.i += 1  # a case pattern's end, or a stray one
            else:
                at = self.i
                w = self.word()
                self.i += self.i == at
                if not words and w.raw == "[[":
                    self.test_words(w)
                    continue
                words.append(w)
                if w.raw == "case" and all(p.raw in _RESERVED for p in words[:-1]):
                    self.case_depth += 1
                elif w.raw == "esac" and self.case_depth:
                    self.case_depth -= 1
        self.command(words)
        self.heredoc_bodies()

    def redirect(self, words: list[_Word]) -> None:
        s = self.s
        op = next(o for o in ("<<<", "<<-", "<<", ">>", "<&", ">&", "<>", ">|", "<", ">") if s.startswith(o, self.i))
        self.i += len(op)
        if (op == "<" and s.startswith("(", self.i)) or (op == ">" and s.startswith("(", self.i)):
            self.i += 1
            self.code(")")
            return
        while self.i < len(s) and s[self.i] in " \t":
            self.i += 1
        target = self.word()
        if op in ("<<", "<<-"):
            quoted = any(q in target.raw for q in "'\"\\")
            delim = re.sub(r"['\"\\]", "", target.raw)
            self.heredocs.append((delim, quoted, op == "<<-"))

    def heredoc_bodies(self) -> None:
        pending, self.heredocs = self.heredocs, []
        s = self.s
        for delim, quoted, strip in pending:
            start = self.i
            while self.i < len(s):
                end = s.find("\n", self.i)
                end = len(s) if end < 0 else end
                line = s[self.i:end]
                if (line.lstrip("\t") if strip else line) == delim:
                    body = s[start:self.i]
                    self.i = min(end + 1, len(s))
                    break
                self.i = min(end + 1, len(s))
            else:
                body = s[start:]
            r = self.nested(body, self.needs)
            if quoted:
                while r.i < len(body):
                    if r.at_hole():
                        r.take_hole("sq")
                    else:
                        r.i += 1
            else:
                r.dquote_text(end_quote=False)

    def test_words(self, first: _Word) -> None:
        """``[[ ... ]]``: words up to ``]]``; an arithmetic comparison makes every value in it a number."""
        words = [first]
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\n":
                self.i += 1
                continue
            if s.startswith("]]", self.i):
                self.i += 2
                break
            if c in "&|()<>!;":
                self.i += 1
                continue
            at = self.i
            words.append(self.word(test=True))
            self.i += self.i == at
        if any(w.raw in ARITH_TESTS for w in words):
            for w in words:
                for n in w.holes:
                    self.spots[n].needs.add("number: [[ ... -eq ... ]]")
        for prev, w in itertools.pairwise(words):
            if prev.raw in ("-v", "-R"):
                self.mark(w.live, f"name: [[ {prev.raw} ]]")

    def command(self, words: list[_Word]) -> None:
        """A simple command's words are complete: what its command does with the values in them."""
        while words and words[0].raw in _RESERVED:
            words = words[1:]
        args = list(words)
        while args and (m := _ASSIGN.match(args[0].raw)) is not None:
            w = args.pop(0)
            name, subscript = m.group(1), m.group(2)
            for n in w.holes:
                where = w.raw.find(hole(n))
                if subscript and where < m.end():
                    self.mark([n], "number: an array subscript a[...]=")
                elif name in self.int_names:
                    self.mark([n], f"number: {name} is declared -i")
        if not args:
            return
        self.mark(args[0].live, "code: the command's name")
        # the programs it may run: its own, and after a wrapper's options the next word or, past an option's
        # value (sudo -u USER), the one after
        runs = [0]
        while _base(args[runs[-1]]) in WRAPPERS:
            after = [j for j in range(runs[-1] + 1, len(args))
                     if not args[j].raw.startswith("-") and not _ASSIGN.match(args[j].raw)][:2]
            for j in after:
                self.mark(args[j].live, f"code: the program {_base(args[runs[-1]])} runs")
            if not after:
                break
            runs += after
        for j in runs:
            self.program(args[j], args[j + 1:])
        if any(w.raw.rsplit("/", 1)[-1] in SHELLS for w in args):
            for prev, w in itertools.pairwise(args):
                if re.fullmatch(r"-[A-Za-z]*c", prev.raw):
                    self.mark(w.live, "code: a shell's -c string")
                    self.reread(w.value)

    def program(self, prog: _Word, rest: list[_Word]) -> None:
        """What the program ``prog`` does with the values in its arguments ``rest``."""
        name = _base(prog)
        if name == "let":
            for w in rest:
                self.mark(w.holes, "number: let")
        elif name in NAME_TAKERS:
            valued = NAME_TAKERS[name]
            names: list[_Word] = []
            plain: list[_Word] = []
            for i, w in enumerate(rest):
                before = rest[i - 1].raw if i else ""
                if before in ("-v", "-a") and before in valued:
                    names.append(w)  # printf -v NAME, read -a NAME
                elif not w.raw.startswith("-") and before not in valued:
                    plain.append(w)
            if name == "getopts":
                names += plain[1:2]
            elif name != "printf":
                names += plain
            for w in names:
                self.mark(w.live, f"name: {name}")
        elif name == "for" and rest and not rest[0].raw.startswith("(("):
            self.mark(rest[0].live, "name: for NAME in")
        elif name in ("test", "["):
            for prev, w in itertools.pairwise(rest):
                if prev.raw in ("-v", "-R"):
                    self.mark(w.live, f"name: {name} {prev.raw}")
        if name in DECLARES:
            flags = "".join(w.raw[1:] for w in rest if w.raw.startswith(("-", "+")))
            for w in rest:
                if not w.raw.startswith(("-", "+")):  # NAME or NAME=value: a value may not choose the NAME
                    head = w.raw.split("=", 1)[0]
                    self.mark([n for n in w.live if hole(n) in head], f"name: {name}")
                    if "n" in flags and "=" in w.raw:  # a nameref: the value names the variable it sets
                        self.mark(w.live, f"name: {name} -n")
                if "i" in flags and not w.raw.startswith(("-", "+")):
                    self.mark(w.holes, f"number: {name} -i")
                    m = _ASSIGN.match(w.raw) or _NAME.match(w.raw)
                    if m is not None:
                        self.int_names.add(m.group(1) if m.re is _ASSIGN else m.group(0))
                if "=(" in w.raw and any(q in w.raw.split("=(", 1)[0] for q in "'\""):
                    self.mark(w.holes, f'code: {name} "a=(...)"')
        elif name in CODE_COMMANDS:
            for w in rest[:1] if name == "trap" else rest:
                self.mark(w.live, f"code: {name}")
                self.reread(w.value)
        elif name == "find":
            for prev, w in itertools.pairwise(rest):
                if prev.raw in ("-exec", "-execdir", "-ok", "-okdir"):
                    self.mark(w.live, f"code: the program find {prev.raw} runs")
        elif name in INTERPRETERS or name.startswith(("python", "perl", "ruby", "php", "lua")):
            for prev, w in itertools.pairwise([prog, *rest]):
                if prev.raw in ("-e", "-c", "-E", "--eval", "--expression", "-r"):
                    self.mark(w.live, f"code: {name} {prev.raw}")
            if name in ("awk", "gawk", "mawk", "nawk", "sed", "gsed") and \
                    not any(w.raw in ("-e", "-f", "--expression", "--file") for w in rest):
                taken = {i + 1 for i, w in enumerate(rest) if w.raw in ("-v", "-F", "-l")}  # options' values
                script = next((w for i, w in enumerate(rest) if not w.raw.startswith("-") and i not in taken), None)
                if script is not None:
                    self.mark(script.live, f"code: the {name} program")

    def mark(self, holes: list[int], what: str) -> None:
        for n in holes:
            self.spots[n].needs.add(what)

    def reread(self, text: str) -> None:
        """Text in '...' that a shell runs: read it again as that shell's code."""
        if _OPEN in text:
            self.nested(text, self.needs, again=True).code("")

    # -- words -------------------------------------------------------------------------------------

    def word(self, *, test: bool = False) -> _Word:
        s = self.s
        w = _Word()
        start = self.i
        while self.i < len(s):
            c = s[self.i]
            if c in _META and not (test and c in "<>()"):
                break
            if test and s.startswith("]]", self.i):
                break
            if self.at_hole():
                at = self.i
                self.take_hole("word", w)
                w.cooked.append(s[at:self.i])
            elif c == "\\":
                at = self.i
                self.skip_escape()
                w.cooked.append(s[at + 1:self.i])
            elif c == "'":
                w.cooked.append(self.single(w))
            elif s.startswith("$'", self.i):
                self.i += 2
                at = self.i
                self.ansi_c(w)
                w.cooked.append(s[at:self.i - 1])
            elif c == '"':
                self.i += 1
                at = self.i
                self.dquote_text(w=w)
                w.cooked.append(re.sub(r'\\([$`"\\])', r"\1", s[at:self.i - 1]))
            else:
                at = self.i
                if c == "$":
                    self.dollar("word", w)
                elif c == "`":
                    self.backtick(w)
                else:
                    self.i += 1
                w.cooked.append(s[at:self.i])
        w.raw = s[start:self.i]
        return w

    def ansi_c(self, w: _Word) -> None:
        s = self.s
        while self.i < len(s):
            if self.at_hole():
                self.take_hole("sq", w)
            elif s[self.i] == "\\":
                self.skip_escape()
            elif s[self.i] == "'":
                self.i += 1
                return
            else:
                self.i += 1

    def dquote_text(self, *, end_quote: bool = True, w: _Word | None = None) -> None:
        """Inside "..." (``end_quote``) or an unquoted here-document body (to the end of the text)."""
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if self.at_hole():
                self.take_hole("dq", w)
            elif c == "\\":
                self.skip_escape()
            elif c == '"' and end_quote:
                self.i += 1
                return
            elif c == "$":
                self.dollar("dq", w)
            elif c == "`":
                self.backtick(w)
            else:
                self.i += 1

    def backtick(self, w: _Word | None) -> None:
        s = self.s
        j = self.i + 1
        while j < len(s) and s[j] != "`":
            j += 2 if s[j] == "\\" and not s.startswith(_OPEN, j + 1) else 1
        inner = s[self.i + 1:j]
        self.i = j + 1
        before = len(self.created)
        self.nested(inner, self.needs).code("")
        if w is not None:
            w.holes += self.created[before:]
            w.live += self.created[before:]

    def dollar(self, quote: str, w: _Word | None) -> None:
        s = self.s
        if s.startswith("$((", self.i):
            self.i += 3
            self.arithmetic("))", "$((...))", w)
        elif s.startswith("$(", self.i):
            self.i += 2
            before = len(self.created)
            self.code(")")
            if w is not None:
                w.holes += self.created[before:]
                w.live += self.created[before:]
        elif s.startswith("${", self.i):
            self.i += 2
            self.parameter(quote, w)
        elif s.startswith("$[", self.i):
            self.i += 2
            self.arithmetic("]", "$[...]", w)
        else:
            self.i += 1

    def parameter(self, quote: str, w: _Word | None) -> None:
        """``${...}`` from after ``${``: a subscript or an offset is arithmetic, a default is a word."""
        s = self.s
        if s.startswith("!", self.i) and self.at_hole_after(1):  # ${!VALUE}: the value names a variable
            self.i += 1
            self.needs = (*self.needs, "name: ${!...}")
            try:
                self.take_hole(quote, w)
            finally:
                self.needs = self.needs[:-1]
        if self.i < len(s) and s[self.i] in "#!":
            self.i += 1
        m = _NAME.match(s, self.i) or re.compile(r"[0-9]+|[@*#?$!-]").match(s, self.i)
        if m is not None:
            self.i = m.end()
        if s.startswith("[", self.i):
            self.i += 1
            self.arithmetic("]", "an array subscript ${a[...]}", w)
        if s.startswith(":", self.i) and not s.startswith((":-", ":=", ":+", ":?"), self.i):
            self.i += 1
            self.arithmetic("}", "a substring ${v:offset}", w)
            return
        depth = 1
        while self.i < len(s):
            c = s[self.i]
            if self.at_hole():
                self.take_hole(quote, w)
            elif c == "\\":
                self.skip_escape()
            elif c == "}":
                depth -= 1
                self.i += 1
                if depth == 0:
                    return
            elif c == "'" and quote == "word":
                self.single(w)
            elif c == '"':
                self.i += 1
                self.dquote_text(w=w)
            elif c == "$":
                self.dollar(quote, w)
            elif c == "`":
                self.backtick(w)
            else:
                self.i += 1

    def arithmetic(self, close: str, where: str, w: _Word | None = None) -> None:
        """Arithmetic up to ``close``: every value in it (also inside a $(...) there) is a number."""
        saved = self.needs
        self.needs = (*saved, f"number: {where}")
        s = self.s
        depth = 0
        try:
            while self.i < len(s):
                if depth == 0 and s.startswith(close, self.i):
                    self.i += len(close)
                    return
                c = s[self.i]
                if self.at_hole():
                    self.take_hole("dq", w)
                elif c == "\\":
                    self.skip_escape()
                elif c in "([":
                    depth += 1
                    self.i += 1
                elif c in ")]":
                    depth -= 1
                    self.i += 1
                elif c == '"':
                    self.i += 1
                    self.dquote_text(w=w)
                elif c == "'":
                    self.single(w)
                elif c == "$":
                    self.dollar("dq", w)
                elif c == "`":
                    self.backtick(w)
                else:
                    self.i += 1
        finally:
            self.needs = saved
