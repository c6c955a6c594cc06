"""Shell commands built from SOP steps, every inserted value quoted. Pure.

A ``template`` / ``file`` step writes its content through a command (the bytes go base64-encoded,
so nothing in them reaches the shell): into a temporary file beside the destination, then renamed
over it, so a reader never sees half a file. (The engine's SFTP ``put_files`` can replace this; a
command keeps each push an archived task with live output, like every other step.)
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Sequence

from smallyi.errors import InputError

#: what a command may carry (the task service refuses longer ones)
MAX_COMMAND = 64 * 1024
#: room left for the rest of the push command
_PUSH_OVERHEAD = 1024


def script_command(script: str, interpreter: str = "sh", args: Sequence[str] = ()) -> str:
    """``<interpreter> -c '<script>' sop-script 'arg1' ...``: the script and each argument quoted."""
    words = [shlex.quote(w) for w in shlex.split(interpreter)]
    return " ".join([*words, "-c", shlex.quote(script), "sop-script", *(shlex.quote(a) for a in args)])


def push_command(dest: str, content: bytes, *, mode: int | None = None, owner: str | None = None) -> str:
    """Write ``content`` to ``dest`` atomically (temporary file in the same folder, then ``mv``)."""
    encoded = base64.b64encode(content).decode()
    if len(encoded) + _PUSH_OVERHEAD > MAX_COMMAND:
        raise InputError(f"content for {dest} is {len(content)} bytes; a pushed file can be at most "
                         f"{(MAX_COMMAND - _PUSH_OVERHEAD) * 3 // 4} bytes until file transfer is used",
                         field="content")
    digest = hashlib.sha256(content).hexdigest()[:16]
    q = shlex.quote
    parts = [
        "set -e",
        f"d={q(dest)}",
        'tmp=$(mktemp "${d%/*}/.smallyi.XXXXXX")',
        "trap 'rm -f \"$tmp\"' EXIT",
        f"printf %s {q(encoded)} | base64 -d > \"$tmp\"",
        f"chmod {mode if mode is not None else 0o644:04o} \"$tmp\"",
    ]
    if owner:
        parts.append(f"chown {q(owner)} \"$tmp\"")
    parts += ['mv -f "$tmp" "$d"', "trap - EXIT",
              f"echo \"wrote $d ({len(content)} bytes, sha256 {digest})\""]
    return "; ".join(parts)
