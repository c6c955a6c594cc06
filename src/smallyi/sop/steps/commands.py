"""The shell commands exec and script steps send, every value passed as data (``sop.shellbind``). Pure.

(``template`` / ``file`` steps write through the engine's file transfer instead: ``steps/files``.)
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from smallyi.policy import bindings
from smallyi.sop.shellbind import compile_shell
from smallyi.sop.variables import VarDecl


def exec_command(text: str, ctx: Mapping[str, Any], decls: Mapping[str, VarDecl]) -> str:
    """An exec step's command: the line pinning its values, then the template with references to them."""
    body, env = compile_shell(text, decls).render(ctx)
    return bindings.prelude(env) + body


def script_command(script: str, interpreter: str = "sh", args: Sequence[str] = ()) -> str:
    """``<interpreter> -c '<script>' sop-script 'arg1' ...``: the script and each argument quoted."""
    words = [shlex.quote(w) for w in shlex.split(interpreter)]
    return " ".join([*words, "-c", shlex.quote(script), "sop-script", *(shlex.quote(a) for a in args)])


def script_step(text: str, ctx: Mapping[str, Any], decls: Mapping[str, VarDecl], interpreter: str,
                args: Sequence[str]) -> str:
    """A script step's command. A shell script starts with the line pinning its values (its own shell sets
    them); a script in another language takes vetted values only, inserted as they are."""
    tpl = compile_shell(text, decls, interpreter=interpreter)
    body, env = tpl.render(ctx)
    return script_command(bindings.prelude(env) + body if tpl.shell else body, interpreter, args)
