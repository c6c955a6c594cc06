"""Values a command pins at its top, as SOP steps send them: ``export SY_A='v' SY_B='w'; readonly SY_A SY_B``
on its first line, then the command, which reads ``"${SY_A}"``. Pure.

This is how a value reaches a shell as data: the command text holds only a reference, and the value is
quoted once, here, in the one form this module writes and reads back. ``readonly`` freezes the
variables in the shell that runs the line, so nothing later in that shell (``read``, ``printf -v``,
``declare``, a function's ``local``) can change them: the policy may read ``"${SY_A}"`` there as
``v`` (``policy.shell``). A shell the command starts (``sh -c '...'``) inherits them unfrozen, so
there they stay unknown, unless that shell's own text starts with such a line.

Only ``SY_`` names are read: a line pinning ``PATH`` or ``LD_PRELOAD`` is an ordinary command that the
policy judges as one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PREFIX = "SY_"
NAME_RE = re.compile(r"SY_[A-Za-z0-9_]{1,120}")
_VALUE = r"'(?:[^']|'\"'\"')*'"
_LINE = re.compile(rf"export((?: {NAME_RE.pattern}={_VALUE})+); readonly((?: {NAME_RE.pattern})+)\n")
_PAIR = re.compile(rf" ({NAME_RE.pattern})=({_VALUE})")


def quote(value: str) -> str:
    """``value`` in single quotes, each ``'`` written ``'"'"'``: the only quoting a value ever gets."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def prelude(env: Mapping[str, str]) -> str:
    """The line that sets, exports and freezes ``env`` (empty for no values)."""
    if not env:
        return ""
    for name, value in env.items():
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not a pinned variable name (SY_ and letters, digits, '_')")
        if "\0" in value:
            raise ValueError(f"the value of {name} contains a NUL character, which no shell can hold")
    return (f"export {' '.join(f'{n}={quote(v)}' for n, v in env.items())}; "
            f"readonly {' '.join(env)}\n")


def split(text: str) -> tuple[dict[str, str], int]:
    """The values ``text`` pins on its first line and where the rest begins; ({}, 0) when it pins none."""
    m = _LINE.match(text)
    if m is None:
        return {}, 0
    pairs = [(n, v[1:-1].replace("'\"'\"'", "'")) for n, v in _PAIR.findall(m.group(1))]
    names = m.group(2).split()
    if [n for n, _ in pairs] != names or len(set(names)) != len(names):
        return {}, 0
    return dict(pairs), m.end()
