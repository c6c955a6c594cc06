"""Shell commands built from SOP steps, every inserted value quoted. Pure.

(``template`` / ``file`` steps write through the engine's file transfer instead: ``steps/files``.)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

_DQ_SPECIAL = re.compile(r'([\\$`"])')


def quote_state(text: str) -> str:
    """The quotes ``text`` leaves open, as ``sh`` reads it: "" (none), "'" or '"'."""
    state, i = "", 0
    while i < len(text):
        c = text[i]
        if c == "\\" and state != "'":
            i += 2
            continue
        if not state and c in "'\"":
            state = c
        elif state == c:
            state = ""
        i += 1
    return state


def shell_value(value: str, before: str) -> str:
    """``value`` made into data where it lands in a command whose text so far is ``before``.

    Unquoted it is single-quoted as a whole; inside "..." its ``\\ $ ` "`` are backslashed; inside '...'
    each ``'`` becomes ``'\\''``. So ``echo "{{ .vars.x }}"`` is as safe as ``echo {{ .vars.x }}``.
    """
    state = quote_state(before)
    if state == "'":
        return value.replace("'", "'\\''")
    if state == '"':
        return _DQ_SPECIAL.sub(r"\\\1", value)
    return shlex.quote(value)


def script_command(script: str, interpreter: str = "sh", args: Sequence[str] = ()) -> str:
    """``<interpreter> -c '<script>' sop-script 'arg1' ...``: the script and each argument quoted."""
    words = [shlex.quote(w) for w in shlex.split(interpreter)]
    return " ".join([*words, "-c", shlex.quote(script), "sop-script", *(shlex.quote(a) for a in args)])
