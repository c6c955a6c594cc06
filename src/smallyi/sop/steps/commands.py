"""Shell commands built from SOP steps, every inserted value quoted. Pure.

(``template`` / ``file`` steps write through the engine's file transfer instead: ``steps/files``.)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def script_command(script: str, interpreter: str = "sh", args: Sequence[str] = ()) -> str:
    """``<interpreter> -c '<script>' sop-script 'arg1' ...``: the script and each argument quoted."""
    words = [shlex.quote(w) for w in shlex.split(interpreter)]
    return " ".join([*words, "-c", shlex.quote(script), "sop-script", *(shlex.quote(a) for a in args)])
