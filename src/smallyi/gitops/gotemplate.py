"""Go templates (``templates/*.tmpl``: ``{{ .worker_processes }}``), with the engine SOPs use.

Every ``.tmpl`` file under ``templates/`` is parsed into one set, as Go's ``ParseFiles`` does: each file
is a template named by its path under ``templates/`` (``nginx.conf.tmpl``, ``nginx/common.tmpl``),
``{{ define "x" }}`` adds ``x``, and ``{{ template "header.tmpl" . }}`` calls any of them. The sandbox is
the engine's: plain values, map keys, a fixed set of pure functions; no attribute, method, file or
environment is reachable. A key a map does not have is an error naming the template, line and host
(``| default X`` and ``index`` take missing values), never ``<no value>`` in a file on a host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from smallyi.gitops.bounds import OutputTooLarge, RenderLimits, RenderStopped, bounded_text, out_of_memory
from smallyi.gotmpl import Document, Execution, ExprError, TemplateSet, parse_document
from smallyi.gotmpl.tree import DuplicateTemplate
from smallyi.inventory.hosts import HostSpec

TEMPLATES = "templates/"
SUFFIX = ".tmpl"
#: a Jinja2 statement, in a file that is now read as a Go template (``{% include "x" %}`` would be text)
_JINJA = re.compile(r"\{%-?\s*(?:if|for|include|set|macro|block|extends|import|from|raw|filter|call|with)\b")


def is_go(name: str) -> bool:
    return name.endswith(SUFFIX)


class GoEngine:
    """The repository's ``.tmpl`` files as one set, parsed once per commit; problems noted once."""

    def __init__(self, templates: Mapping[str, str], problems: list[str], *, limits: RenderLimits) -> None:
        self.tset = TemplateSet()
        self.limit = max(limits.output, 64 * 1024)
        self.broken: set[str] = set()
        for name in sorted(n for n in templates if is_go(n)):
            source = templates[name]
            jinja = _JINJA.search(source)
            if jinja:
                self.broken.add(name)
                problems.append(f"{TEMPLATES}{name}, line {_line(source, jinja.start())}: {jinja.group()!r} is "
                                "Jinja2: files ending in .tmpl are Go templates ({{ if .x }} ... {{ end }}); "
                                "rename it to .j2 to keep it Jinja2")
                continue
            try:
                self.tset.add(name, source, limit=self.limit)
            except DuplicateTemplate as exc:
                self.broken.add(name)
                problems.append(f"{TEMPLATES}{name}, line {_line(source, exc.pos)}: {_prefixed(exc.message)}")
            except ExprError as exc:
                self.broken.add(name)
                problems.append(f"{TEMPLATES}{name}, line {_line(source, exc.pos)}: syntax error: {exc.message}")
        for doc, inc in self.tset.unknown_includes():
            self.broken.add(doc.file)
            problems.append(f"{TEMPLATES}{doc.file}, line {doc.line(inc.pos)}: {self._unknown(inc.name, templates)}")

    def compile(self, name: str, problems: list[str]) -> GoTemplate | None:
        """``templates/name`` (its problems were noted when the set was parsed)."""
        doc = self.tset.templates.get(name)
        return None if doc is None or name in self.broken else GoTemplate(self.tset, doc, TEMPLATES + name, True)

    def compile_text(self, source: str, where: str, problems: list[str]) -> GoTemplate | None:
        """A template in ``sync.yaml`` (a path), named ``where`` in problems; it may call the set's templates."""
        try:
            doc = parse_document(where, source, limit=self.limit)[0]
        except ExprError as exc:
            problems.append(f"{where}: syntax error: {exc.message}")
            return None
        return GoTemplate(self.tset, doc, where, False)

    def _unknown(self, name: str, templates: Mapping[str, str]) -> str:
        if name in templates:
            return (f"no template named {name!r}: {name} is a Jinja2 template, and a .tmpl template calls "
                    "only .tmpl files and their defines")
        return (f"no template named {name!r}{self.tset.suggest(name)}; a .tmpl template calls the .tmpl files "
                "under templates/ (by their path there) and their defines")


class GoTemplate:
    def __init__(self, tset: TemplateSet, doc: Document, where: str, lines: bool) -> None:
        self.tset = tset
        self.doc = doc
        self.where = where
        #: a file's errors name a line; a path's do not (it is one line of sync.yaml)
        self.lines = lines

    def run(self, context: dict[str, Any], host: HostSpec, problems: list[str], limits: RenderLimits) -> str | None:
        """The text, bounded while it is written; None with a problem noted. RenderStopped ends the render."""
        ex = Execution(self.tset, strict=True)
        try:
            return bounded_text(ex.run(self.doc, context), limits.output)
        except OutputTooLarge as exc:
            problems.append(f"{self.where}, host {host.name}: {exc}")
            return None
        except RenderStopped as exc:
            raise RenderStopped(exc.message, where=f"{self._at(ex, exc)}, host {host.name}") from None
        except MemoryError as exc:
            raise RenderStopped(out_of_memory(limits.memory), where=f"{self._at(ex, exc)}, host {host.name}") from None
        except RecursionError as exc:
            problems.append(f"{self._at(ex, exc)}, host {host.name}: templates nest too deeply")
            return None
        except ExprError as exc:
            problems.append(f"{self._at(ex, exc)}, host {host.name}: {exc.message}")
            return None

    def _at(self, ex: Execution, exc: BaseException) -> str:
        file, line = ex.where(exc)
        if not file or (not self.lines and file == self.doc.file):
            return self.where
        return f"{TEMPLATES}{file}, line {line}"


def _prefixed(message: str) -> str:
    return message.replace(" is already defined in ", f" is already defined in {TEMPLATES}", 1)


def _line(source: str, pos: int) -> int:
    return source.count("\n", 0, pos) + 1
