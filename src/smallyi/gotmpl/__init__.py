"""Go-style templates (``{{ .worker_processes }}``, ``{{ range .upstreams }}``), evaluated purely.

A small interpreter of its own (no Python ``eval``): values are plain data (maps, lists, strings,
numbers, booleans, None); a field reads a map key and nothing else (no attributes, no methods);
functions are a fixed set of pure ones, each bounding the size of what it builds. Used by SOPs for
text with actions (``smallyi.sop.expr``) and by GitOps for whole ``.tmpl`` files with ``if``,
``range``, ``with``, variables and ``define``/``template`` (``tree``, ``execute``), rendered as a
stream of text pieces so that whoever reads it can stop it at a size. May import: errors only.
"""

from __future__ import annotations

from smallyi.gotmpl.evaluator import MissingValue
from smallyi.gotmpl.execute import Execution
from smallyi.gotmpl.lexer import ExprError
from smallyi.gotmpl.tree import Document, TemplateSet, parse_document

__all__ = ["Document", "Execution", "ExprError", "MissingValue", "TemplateSet", "parse_document"]
