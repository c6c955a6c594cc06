"""Files that ``tee``, ``sort``, ``uniq`` and ``find`` write, and programs they run, read from their arguments. Pure.

``tee FILE``, ``sort -o FILE``, ``uniq IN OUT`` and find's ``-fprint FILE`` (``-fprint0``, ``-fprintf``,
``-fls``) write files, though the shell sees no redirection: :func:`effects` reports them, so they count as
redirections (``> /etc/passwd`` denies ``sort -o /etc/passwd``; an allow list needs ``> PATH`` for them).
``sort --compress-program=PROG`` runs PROG, which is then judged as a command of its own. An argument from an
expansion that may be an option (``sort $X``, ``find $X``: ``-o FILE``, ``-exec ...``) could be any of this,
so it makes the command opaque; put it after ``--`` (sort) or behind a literal path (find: ``./"$D"``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from smallyi.policy import paths
from smallyi.policy.shell import Word

TOOLS = frozenset({"tee", "sort", "uniq", "find"})

_SORT_SHORT_VALUE = set("kStTo")
_SORT_LONG_VALUE = ("--key", "--field-separator", "--temporary-directory", "--buffer-size", "--output",
                    "--batch-size", "--compress-program", "--files0-from", "--parallel", "--random-source", "--sort")
_UNIQ_SHORT_VALUE = {"-f", "-s", "-w"}
_UNIQ_LONG_VALUE = ("--skip-fields", "--skip-chars", "--check-chars")
_FIND_WRITES = {"-fprint": 1, "-fprint0": 1, "-fls": 1, "-fprintf": 2}
_FIND_EXEC = {"-exec", "-execdir", "-ok", "-okdir"}
_FIND_BEFORE = {"-H", "-L", "-P"}


@dataclass(frozen=True, slots=True)
class Effects:
    #: files the command writes
    writes: tuple[Word, ...] = ()
    #: (the option, the program it runs)
    runs: tuple[tuple[str, Word], ...] = ()
    #: why the command is opaque, or ""
    opaque: str = ""


def _maybe_option(a: Word) -> bool:
    """An expansion that may turn into an option (``$X``, ``-$X``); find's ``{}`` is a path."""
    return not a.known and (a.prefix == "" or a.prefix.startswith("-")) and a.raw != "{}"


def _one_word(a: Word) -> bool:
    """Does ``a`` stay one word at run time (``"$F"``), rather than split or glob into several?"""
    return a.known or (len(a.raw) > 1 and a.raw[0] == a.raw[-1] == '"' and '"' not in a.raw[1:-1])


def _long(word: str, options: Sequence[str]) -> str | None:
    """The long option ``word`` spells (GNU takes any prefix; an ambiguous one counts as the first listed)."""
    name = word.split("=", 1)[0]
    if len(name) < 3:
        return None
    return next((o for o in options if o.startswith(name)), None)


def _tee(args: Sequence[Word]) -> Effects:
    files, ended = [], False
    for a in args:
        if a.known and not ended and a.text.startswith("-") and a.text != "-":
            ended = a.text == "--"
            continue
        files.append(a)
    return Effects(writes=tuple(files))


def _sort(args: Sequence[Word]) -> Effects:
    writes: list[Word] = []
    runs: list[tuple[str, Word]] = []
    i = 0
    while i < len(args):
        a, t = args[i], args[i].text
        nxt = args[i + 1] if i + 1 < len(args) else None
        if _maybe_option(a):
            return Effects(opaque="sort: an argument comes from an expansion and may be an option "
                                  "(-o writes a file, --compress-program runs one); put it after --")
        if a.known and t == "--":
            break  # the rest are files
        if not a.known:
            i += 1
            continue
        if t.startswith("--"):
            opt = _long(t, _SORT_LONG_VALUE)
            value = Word.literal(t.split("=", 1)[1]) if "=" in t else nxt
            if opt and "=" not in t:
                i += 1
            if opt == "--output" and value is not None:
                writes.append(value)
            elif opt == "--compress-program" and value is not None:
                runs.append(("--compress-program", value))
        elif t.startswith("-") and len(t) > 1:
            for j, c in enumerate(t[1:], 1):
                if c in _SORT_SHORT_VALUE:
                    value = Word.literal(t[j + 1:]) if t[j + 1:] else nxt
                    i += 0 if t[j + 1:] else 1
                    if c == "o" and value is not None:
                        writes.append(value)
                    break
        i += 1
    return Effects(writes=tuple(writes), runs=tuple(runs))


def _uniq(args: Sequence[Word]) -> Effects:
    operands: list[Word] = []
    i, ended = 0, False
    while i < len(args):
        a, t = args[i], args[i].text
        if a.known and not ended and t.startswith("-") and t != "-":
            ended = t == "--"
            takes = t in _UNIQ_SHORT_VALUE or ("=" not in t and t.startswith("--") and _long(t, _UNIQ_LONG_VALUE))
            i += 2 if takes else 1
            continue
        operands.append(a)
        i += 1
    # the second operand is the output; one that splits or globs into several words may supply it
    return Effects(writes=tuple(operands[1:2]) + tuple(a for a in operands[:1] if not _one_word(a)))


def start_prefix(args: Sequence[Word]) -> str:
    """What every path find reports starts with: its absolute start points' common prefix, or "" (unknown,
    relative, or none: find then starts at ``.``)."""
    starts: list[str] = []
    i = 0
    while i < len(args) and args[i].known and (args[i].text in _FIND_BEFORE or args[i].text.startswith(("-D", "-O"))):
        i += 2 if args[i].text == "-D" else 1
    for a in args[i:]:
        if a.known and ((a.text.startswith("-") and len(a.text) > 1) or a.text in ("(", "!", ")", ",")):
            break
        if not a.known or not a.text.startswith("/"):
            return ""
        starts.append(paths.normal(a.text))
    return posixpath.commonprefix(starts) if starts else ""


def _find(args: Sequence[Word]) -> Effects:
    writes: list[Word] = []
    i = 0
    while i < len(args):
        a, t = args[i], args[i].text
        if _maybe_option(a):
            return Effects(opaque="find: an argument comes from an expansion and may be an action "
                                  "(-delete, -exec); write it behind a literal path, like ./\"$D\"")
        if a.known and t in _FIND_EXEC:
            while i + 1 < len(args) and not (args[i + 1].known and args[i + 1].text in (";", "+")):
                i += 1
        elif a.known and t in _FIND_WRITES:
            if i + 1 < len(args):
                writes.append(args[i + 1])
            i += _FIND_WRITES[t]
        i += 1
    return Effects(writes=tuple(writes))


def effects(name: str, args: Sequence[Word], *, more_args: bool) -> Effects:
    """What ``name ARGS`` writes and runs beyond its output; ``more_args``: xargs adds unknown ones."""
    if more_args and name in ("sort", "find"):
        return Effects(opaque=f"{name} gets more arguments at run time (xargs), which may be options "
                              f"that write files or run programs")
    fx = {"tee": _tee, "sort": _sort, "uniq": _uniq, "find": _find}[name](args)
    if more_args:  # tee and uniq: the added arguments may be files they write
        fx = Effects(writes=(*fx.writes, Word("", False, "", "(arguments xargs adds)")), runs=fx.runs)
    return fx
