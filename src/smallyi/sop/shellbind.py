"""Shell commands from SOP templates, every value passed as data. Pure.

A value never becomes command text. Each ``{{ ... }}`` in a command or a shell script becomes a
reference to an environment variable, and the command starts with one line that sets them, each value
quoted once (``policy.bindings``)::

    cmd: "cat > /etc/motd <<EOF\\nWelcome to {{ .vars.site }}\\nEOF"
    sent: export SY_V_site='it'"'"'s $(here)'; readonly SY_V_site
          cat > /etc/motd <<EOF
          Welcome to ${SY_V_site}
          EOF

The shell expands a reference to the value as data wherever it stands: unquoted (written ``"${X}"``),
in ``"..."``, in an unquoted here-document, after ``#``; a shell the command starts (``sh -c '...
"${X}" ...'``) reads it from its environment. In ``'...'`` and quoted here-documents nothing is
expanded: the text ``${X}`` stays (which a script written there and run by the command reads).

What that does not cover is what bash itself does with a value (``shellscan``): in arithmetic it runs
``a[$(cmd)]``; in ``eval``, ``sh -c "..."`` and the like the value *is* code; as a variable's name
(``printf -v``) it may pick ``PATH``. So, before anything is sent: a value read as a number must be a
variable declared ``int`` (or an enum of whole numbers) or converted with ``| int``; a value that would
run as code or name a variable, or ``| raw``, must be a variable whose every value the author chose
(``int``, ``enum``, ``pattern``); and any other value holding ``NAME[`` then ``$`` or a backtick (what
bash evaluates, wherever the value flows) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smallyi.errors import InputError
from smallyi.sop import shellscan, variables
from smallyi.sop.expr import Template, compile_template, to_text
from smallyi.sop.expr.evaluator import Evaluator
from smallyi.sop.expr.lexer import split_template
from smallyi.sop.expr.parser import Call, Field, Literal, Pipeline
from smallyi.sop.shellscan import Spot
from smallyi.sop.variables import VarDecl

#: functions whose result is always a number
NUMERIC = frozenset({"int", "len", "add", "sub", "mul", "div", "mod"})
_SUBSCRIPT = re.compile(r"[A-Za-z0-9_]\[")
_SHELL_PROGRAMS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"})


def evaluated(text: str) -> bool:
    """Would bash run a command in ``text`` used as a number or a variable name? A subscript followed by an
    expansion (``a[$(cmd)]``, ``x[`cmd`]``, ``a[${x:=...}]``): a name, ``[``, then ``$`` or a backtick."""
    m = _SUBSCRIPT.search(text)
    return m is not None and ("$" in text[m.end():] or "`" in text[m.end():])


@dataclass(frozen=True, slots=True)
class Issue:
    message: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class Slot:
    """One ``{{ ... }}`` of a shell-bound template."""

    #: what is evaluated (a trailing ``| raw`` or ``| quote`` taken off)
    pipeline: Pipeline
    #: the action as written, for messages
    source: str
    raw: bool
    spot: Spot
    #: the variable it reads alone (``{{ .vars.x }}``), if declared
    var: VarDecl | None
    #: its value is a number by construction (``| int``, ``len``, a number literal)
    numeric: bool
    #: a constant written in the template (``{{ "x" | raw }}``)
    constant: bool
    #: the environment variable holding the value
    name: str

    @property
    def vetted(self) -> bool:
        return (self.var is not None and self.var.vetted) or self.constant

    @property
    def number_ok(self) -> bool:
        return (self.var is not None and self.var.numeric) or self.numeric or self.constant

    def problems(self, *, shell: bool, interpreter: str) -> list[Issue]:
        src = self.source
        if not shell:
            if self.raw and self.vetted:
                return []
            return [Issue(f"{src}: a {interpreter} script cannot take values in its text (they would be "
                            f"{interpreter} code): pass them as args: (read as sys.argv or the like), or "
                            "insert a variable declared int, enum or pattern with | raw")]
        out: list[Issue] = []
        needs = sorted(self.spot.needs)
        numbers = [n.split(": ", 1)[1] for n in needs if n.startswith("number:")]
        code = [n.split(": ", 1)[1] for n in needs if n.startswith("code:")]
        names = [n.split(": ", 1)[1] for n in needs if n.startswith("name:")]
        if numbers and not self.number_ok:
            hint = "; declare it {type: int} under vars:" if self.var is not None else \
                ", or convert it with | int"
            out.append(Issue(f"{src} is read as a number by bash here ({numbers[0]}: arithmetic), where bash "
                               "runs a[$(command)] in a value: only a variable declared int, or a value "
                               f"converted with | int, may stand there{hint}"))
        if code and not self.vetted:
            out.append(Issue(f"{src} would run as code here ({code[0]}): a value is passed as data, never run. "
                               "Pass it as an argument (sh -c '... \"$1\"' sh {{ ... }}), or declare the "
                               "variable enum or pattern so that each value it may take is one you wrote"))
        if names and not code and not self.vetted:
            out.append(Issue(f"{src} would name the variable set or read here ({names[0]}), which could be PATH, "
                             "LD_PRELOAD or PS4 and so run code: a value is data, never a name. Declare the "
                             "variable enum or pattern so that each name it may give is one you wrote"))
        if self.raw and not self.vetted:
            out.append(Issue(f"{src}: raw inserts a value as shell code; only a variable declared int, enum "
                               "or pattern (its value checked before the run starts) may be inserted raw"))
        if self.spot.quote == "sq" and not self.spot.inner_shell and not self.raw and not out:
            out.append(Issue(f"{src} is inside '...', where the shell inserts nothing: the command gets the "
                               f"text ${{{self.name}}}, not the value (a shell it starts reads that from its "
                               "environment). To pass the value, put it outside the single quotes or in "
                               '"..."', warning=True))
        return out


def is_shell(interpreter: str) -> bool:
    """Does ``interpreter`` (``bash -e``, ``/usr/bin/env bash``, ``python3``) read sh syntax?"""
    words = interpreter.split()
    prog = words[0].rsplit("/", 1)[-1] if words else "sh"
    if prog == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        prog = rest[0].rsplit("/", 1)[-1] if rest else ""
    if prog == "busybox":
        return len(words) > 1 and words[1] in ("sh", "ash")
    return prog in _SHELL_PROGRAMS


@dataclass(frozen=True, slots=True)
class ShellTemplate:
    """A command or script template, read for where its values land."""

    template: Template
    slots: tuple[Slot, ...]
    #: False for a script in another language (python, ...): only vetted values, inserted raw
    shell: bool = True
    interpreter: str = "sh"

    def problems(self) -> list[Issue]:
        out = [p for s in self.slots for p in s.problems(shell=self.shell, interpreter=self.interpreter)]
        if any(shellscan.has_marks(p) for p in self.template.parts if isinstance(p, str)):
            out.append(Issue("the text holds the private-use characters U+E000/U+E001, which small-yi reserves"))
        return out

    def render(self, ctx: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        """(the text with references, the values to pin); InputError naming a value that cannot be sent."""
        errors = [p.message for p in self.problems() if not p.warning]
        if errors:
            raise InputError(errors[0], field="cmd")
        ev = Evaluator(ctx)
        env: dict[str, str] = {}
        out: list[str] = []
        slots = iter(self.slots)
        for part in self.template.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            slot = next(slots)
            value = ev.pipeline(slot.pipeline)
            text = to_text(value)
            _check(slot, value, text)
            if slot.raw:
                out.append(text)
                continue
            name = slot.name
            if env.get(name, text) != text:  # two different values under one name (a.b and a_b): keep both
                name = f"{name}_{len(env) + 1}"
            env[name] = text
            out.append(f'"${{{name}}}"' if slot.spot.quote == "word" else f"${{{name}}}")
        return "".join(out), env


def _check(slot: Slot, value: Any, text: str) -> None:
    """Refuse a value that cannot be sent where it lands (the static checks, again, on the value itself)."""
    src = slot.source
    if "\0" in text:
        raise InputError(f"{src}: the value contains a NUL character, which no shell command can hold", field="cmd")
    if slot.var is not None and slot.var.type:
        try:
            variables.check(slot.var, value)
        except ValueError as exc:
            raise InputError(f"{src}: {exc}", field="cmd") from None
    if any(n.startswith("number:") for n in slot.spot.needs) and not variables.INT_RE.fullmatch(text) and not (
            isinstance(value, float) and slot.numeric):
        raise InputError(f"{src}: {text[:60]!r} is not a whole number, and bash reads this place as one",
                         field="cmd")
    if not slot.vetted and evaluated(text):
        raise InputError(f"{src}: the value {_short(text)} holds NAME[ and then $ or a backtick, which bash runs "
                         "as a command wherever the value is used as a number or a variable name; it is not "
                         "sent to a shell. Declare the variable pattern or enum to allow such values",
                         field="cmd")


def check_text(text: str, source: str) -> None:
    """A value passed whole (a script's argument): no NUL, nothing bash would evaluate."""
    if "\0" in text:
        raise InputError(f"{source}: the value contains a NUL character, which no shell command can hold",
                         field="args")
    if evaluated(text):
        raise InputError(f"{source}: the value {_short(text)} holds NAME[ and then $ or a backtick, which bash "
                         "runs as a command wherever the value is used as a number or a variable name; it is "
                         "not sent to a shell", field="args")


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _strip(pipe: Pipeline, fn: str) -> Pipeline | None:
    """``pipe`` without a final ``| fn`` (or ``fn X`` alone), or None if it does not end so."""
    last = pipe.commands[-1]
    if not isinstance(last, Call) or last.name != fn:
        return None
    if len(pipe.commands) > 1 and not last.args:
        return Pipeline(pipe.commands[:-1], pipe.pos)
    if len(pipe.commands) == 1 and len(last.args) == 1:
        arg = last.args[0]
        return arg if isinstance(arg, Pipeline) else Pipeline((arg,), pipe.pos)
    return None


def _slot(pipe: Pipeline, source: str, spot: Spot, decls: Mapping[str, VarDecl], index: int) -> Slot:
    raw = _strip(pipe, "raw")
    inner = raw or _strip(pipe, "quote") or pipe
    only = inner.commands[0] if len(inner.commands) == 1 else None
    var = decls.get(only.path[1]) if isinstance(only, Field) and len(only.path) == 2 and \
        only.path[0] == "vars" else None
    last = inner.commands[-1]
    numeric = (isinstance(last, Call) and last.name in NUMERIC) or (
        isinstance(only, Literal) and isinstance(only.value, int | float) and not isinstance(only.value, bool))
    constant = isinstance(only, Literal)
    if isinstance(only, Field) and len(only.path) == 2 and only.path[0] in ("vars", "env") and \
            re.fullmatch(r"[A-Za-z0-9_]{1,100}", only.path[1]):
        name = f"SY_{'V' if only.path[0] == 'vars' else 'E'}_{only.path[1]}"
    else:
        name = f"SY_{index}"
    return Slot(inner, source, raw is not None, spot, var, numeric, constant, name)


def compile_shell(text: str, decls: Mapping[str, VarDecl], *, interpreter: str = "sh") -> ShellTemplate:
    """Read ``text`` (a command, or a script for ``interpreter``) for where its values land."""
    template = compile_template(text)
    actions = [c.text.strip() for c in split_template(text) if c.action]
    pipes = [p for p in template.parts if isinstance(p, Pipeline)]
    shell = is_shell(interpreter)
    marked, n = [], 0
    for part in template.parts:
        if isinstance(part, str):
            marked.append(part)
        else:
            marked.append(shellscan.hole(n))
            n += 1
    spots = shellscan.scan("".join(marked)) if shell else {}
    slots = []
    for i, pipe in enumerate(pipes):
        # a place the reader did not reach (it should not happen) is taken for the worst
        spot = spots.get(i) or Spot(needs={"code: a place small-yi cannot read"}) if shell else Spot()
        slots.append(_slot(pipe, "{{ " + actions[i] + " }}", spot, decls, i + 1))
    return ShellTemplate(template, tuple(slots), shell, interpreter.split()[0] if interpreter else "sh")
