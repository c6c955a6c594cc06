"""The SOP expression language: Go-template style actions in text, evaluated purely.

``"{{ .output | contains '95%' }}"`` is text with one action; an action is a pipeline of commands
where ``x | f a`` calls ``f a x``. Fields (``.steps.check.output``) read the context, a tree of plain
values (dicts, lists, strings, numbers, booleans, None); nothing else is reachable: no attributes, no
Python ``eval``, a budget on work and on the size of what is built.

The engine (lexer, parser, evaluator, functions) is ``smallyi.gotmpl``, shared with GitOps templates;
this package is the SOPs' use of it: text with actions, without ``if``/``range`` blocks or variables,
where a missing key is nil (SOP fields are checked against their declared names before a run).
The modules ``lexer``, ``parser``, ``evaluator`` and ``functions`` here re-export the engine's.

    tpl = compile_template("{{ .output | contains '95%' }}")
    tpl.test({"output": "/dev/sda1 ... 95% /"})         # True
    tpl.render(ctx, escape=shlex.quote)                 # text, every action's value quoted
"""

from __future__ import annotations

from smallyi.sop.expr.functions import FUNCTIONS, Raw, to_text, truthy
from smallyi.sop.expr.lexer import ExprError
from smallyi.sop.expr.template import Template, compile_template, field_paths

__all__ = ["FUNCTIONS", "ExprError", "Raw", "Template", "compile_template", "field_paths", "to_text", "truthy"]
