"""GNU sed scripts that run or write: the ``e`` command, the ``s///e`` and ``s///w`` flags, ``w``/``W``, ``-i``. Pure.

``sed 's/x/reboot/e'`` runs ``reboot`` through a shell, and ``sed -n 'w /etc/passwd'`` writes a file,
though neither is a command or a redirection the shell parser sees. :func:`effects` reads the
script (from ``-e``/``--expression`` or the first operand) the way sed does — addresses, ``s`` and
``y`` with any delimiter, text of ``a``/``i``/``c``, labels, file names — and reports the commands it
would run and the files it would write; a script from a file (``-f``) or an expansion, or one it
cannot read, makes the command opaque. ``--sandbox`` (sed itself then refuses ``e``, ``r`` and ``w``)
makes any script safe. ``-i`` (``--in-place``) rewrites the files it reads: they count as written too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smallyi.policy.shell import Word

_NO_ARGS = set("=dDgGhHnNpPxzF{}")
_TO_EOL = set("aicrRwW:btTvqQlL#")  # the rest of the line (or up to ';' for labels and numbers)
_ENDS_AT_SEMI = set(":btTvqQlL")
#: options taking a value in the next word when not attached
_VALUE_OPTS = {"-e", "-f", "-l", "--expression", "--file", "--line-length"}


class _Unreadable(Exception):
    pass


def _scripts(args: Sequence[Word]) -> tuple[list[Word], list[Word], bool, str]:
    """(the script words, the file operands, whether ``-i`` edits them in place, a reason the command is
    opaque regardless of them, or "")."""
    scripts: list[Word] = []
    operands: list[Word] = []
    i = 0
    sandbox = in_place = False
    while i < len(args):
        a = args[i]
        t = a.text
        if not a.known:
            if (a.prefix.startswith("-") or a.prefix == "") and a.raw != "{}":  # find -exec's {}: a path
                # it may expand to options (sed takes them after operands too), e.g. -e 'e reboot'
                return [], [], False, "sed: an argument comes from an expansion and may be an option or a script"
            operands.append(a)
            i += 1
            continue
        if t == "--":
            operands += args[i + 1:]
            break
        if t.startswith("--"):
            name, eq, value = t.partition("=")
            if name == "--sandbox":
                sandbox = True
            elif "--in-place".startswith(name) and len(name) >= 3:
                in_place = True
            elif "--expression".startswith(name) and len(name) >= 3:
                if eq:
                    scripts.append(Word.literal(value))
                elif i + 1 < len(args):
                    scripts.append(args[i + 1])
                    i += 1
            elif "--file".startswith(name) and len(name) >= 3:
                return [], [], False, "sed reads its script from a file the policy cannot read"
            elif name in _VALUE_OPTS and not eq:
                i += 1
            i += 1
            continue
        if t.startswith("-") and len(t) > 1:
            for j, c in enumerate(t[1:], 1):
                if c == "i":
                    in_place = True
                    break  # -i[SUFFIX]: the rest is the suffix
                if c in "efl":
                    rest = t[j + 1:]
                    if c == "f":
                        return [], [], False, "sed reads its script from a file the policy cannot read"
                    if rest:
                        if c == "e":
                            scripts.append(Word.literal(rest))
                    elif i + 1 < len(args):
                        if c == "e":
                            scripts.append(args[i + 1])
                        i += 1
                    break
            i += 1
            continue
        operands.append(a)
        i += 1
    if not scripts and operands:
        scripts, operands = [operands[0]], operands[1:]
    return ([] if sandbox else scripts), operands, in_place, ""


def _skip_regex(s: str, i: int, delim: str) -> int:
    """The index just past the closing ``delim`` of a regex or replacement starting at ``i``."""
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == delim:
            return i + 1
        if c == "\n":
            raise _Unreadable("an unterminated s, y or address")
        i += 1
    raise _Unreadable("an unterminated s, y or address")


def _address(s: str, i: int) -> int:
    while i < len(s):
        c = s[i]
        if c.isdigit() or c in "$,~+! \t":
            i += 1
        elif c == "/":
            i = _skip_regex(s, i + 1, "/")
            while i < len(s) and s[i] in "IM":
                i += 1
        elif c == "\\" and i + 1 < len(s):
            i = _skip_regex(s, i + 2, s[i + 1])
            while i < len(s) and s[i] in "IM":
                i += 1
        else:
            return i
    return i


def _to_eol(s: str, i: int, *, semi: bool) -> int:
    while i < len(s) and s[i] != "\n" and not (semi and s[i] in ";}"):
        if s[i] == "\\" and not semi:
            i += 1  # a/i/c text: an escaped newline continues it
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class Effects:
    #: why the command is opaque (the script cannot be seen or read), or ""
    opaque: str = ""
    #: why the script runs shell commands (``e``), or ""
    runs: str = ""
    #: files the script writes (``w``, ``W``, ``s///w``)
    writes: tuple[str, ...] = ()
    #: files ``-i`` rewrites in place
    edits: tuple[Word, ...] = ()


def _filename(s: str, i: int) -> tuple[str, int]:
    end = _to_eol(s, i, semi=False)
    return s[i:end].strip(), end


def _scan(script: str) -> tuple[str, list[str]]:
    """(why this script runs shell commands or "", the files it writes)."""
    runs, writes = "", []
    s, i = script, 0
    while i < len(s):
        c = s[i]
        if c in " \t\n;":
            i += 1
            continue
        i = _address(s, i)
        if i >= len(s):
            break
        c = s[i]
        i += 1
        if c in _NO_ARGS:
            continue
        if c == "e":
            runs = runs or "sed's e command runs a shell command the policy cannot see"
            i = _to_eol(s, i, semi=False)
            continue
        if c in "wW":
            name, i = _filename(s, i)
            writes.append(name)
            continue
        if c in _TO_EOL:
            i = _to_eol(s, i, semi=c in _ENDS_AT_SEMI)
            continue
        if c == "y":
            if i >= len(s):
                raise _Unreadable("y without its delimiter")
            d = s[i]
            i = _skip_regex(s, _skip_regex(s, i + 1, d), d)
            continue
        if c == "s":
            if i >= len(s) or s[i] in "\n\\":
                raise _Unreadable("s without its delimiter")
            d = s[i]
            i = _skip_regex(s, _skip_regex(s, i + 1, d), d)
            while i < len(s) and s[i] not in ";\n}#":
                f = s[i]
                if f == "e":
                    runs = runs or "the e flag of sed's s command runs the result as a shell command"
                if f == "w":
                    name, i = _filename(s, i + 1)
                    writes.append(name)
                    break
                if not (f.isdigit() or f in "egpiImM \t"):
                    raise _Unreadable(f"unknown flag {f!r} of s")
                i += 1
            continue
        raise _Unreadable(f"unknown command {c!r}")
    return runs, writes


def effects(args: Sequence[Word]) -> Effects:
    """What ``sed ARGS`` runs and writes beyond its own output."""
    scripts, operands, in_place, reason = _scripts(args)
    if reason:
        return Effects(opaque=reason)
    edits = tuple(operands) if in_place else ()
    runs, writes = "", []
    for w in scripts:
        if not w.known:
            return Effects(opaque="sed: the script comes from an expansion; cannot tell what it runs", edits=edits)
        try:
            r, ws = _scan(w.text)
        except _Unreadable as exc:
            return Effects(opaque=f"sed: the script cannot be checked ({exc})", edits=edits)
        runs = runs or r
        writes += ws
    return Effects(runs=runs, writes=tuple(writes), edits=edits)
