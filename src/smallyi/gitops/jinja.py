"""Jinja2 templates (``templates/*.j2``, and any name not ending in ``.tmpl``), in a sandbox.

Templates come from Git, so they run in Jinja2's ``ImmutableSandboxedEnvironment``: no attribute
starting with ``_`` (no ``__class__``, ``__globals__``, ``mro``), no mutation of the shared variables, no
loader but the repository's own ``templates/`` (not its Go templates), and only a few globals.
Undefined variables are errors (``StrictUndefined``), never empty strings.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from smallyi.gitops.bounds import OutputTooLarge, RenderLimits, RenderStopped, bounded_text, out_of_memory
from smallyi.inventory.hosts import HostSpec

TEMPLATES = "templates/"
#: the suffix of Go templates, which a Jinja2 template cannot include
GO_SUFFIX = ".tmpl"


class JinjaEngine:
    """The repository's Jinja2 templates: compiled once per commit, run per host."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self.templates = templates
        self.env = environment(templates)
        self._compiled: dict[str, JinjaTemplate | None] = {}

    def compile(self, name: str, problems: list[str]) -> JinjaTemplate | None:
        """``templates/name``, or None with its problem noted (once)."""
        if name not in self._compiled:
            self._compiled[name] = None
            try:
                self._compiled[name] = JinjaTemplate(self.env.get_template(name), TEMPLATES + name, self.templates)
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"{exc.filename or TEMPLATES + name}, line {exc.lineno}: syntax error: {exc.message}")
            except jinja2.TemplateNotFound as exc:
                problems.append(f"{TEMPLATES}{name}: {_not_found(exc.name, self.templates)}")
        return self._compiled[name]

    def compile_text(self, source: str, where: str, problems: list[str]) -> JinjaTemplate | None:
        """A template in ``sync.yaml`` (a path), named ``where`` in problems."""
        try:
            return JinjaTemplate(self.env.from_string(source), where, self.templates)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(f"{where}: syntax error: {exc.message}")
            return None


class JinjaTemplate:
    def __init__(self, template: jinja2.Template, where: str, templates: Mapping[str, str]) -> None:
        self.template = template
        self.where = where
        self.templates = templates

    def run(self, context: dict[str, Any], host: HostSpec, problems: list[str], limits: RenderLimits) -> str | None:
        """The text, bounded while it is written; None with a problem noted. RenderStopped ends the render."""
        where = self.where
        try:
            return bounded_text(self.template.generate(context), limits.output)
        except OutputTooLarge as exc:
            problems.append(f"{where}, host {host.name}: {exc}")
            return None
        except RenderStopped as exc:
            raise RenderStopped(exc.message, where=f"{_at(exc, where)}, host {host.name}") from None
        except MemoryError as exc:
            raise RenderStopped(out_of_memory(limits.memory), where=f"{_at(exc, where)}, host {host.name}") from None
        except jinja2.TemplateNotFound as exc:
            problems.append(f"{_at(exc, where)}, host {host.name}: {_not_found(exc.name, self.templates)}")
            return None
        except Exception as exc:  # anything a template can raise: undefined, sandbox, type errors, ...
            problems.append(f"{_at(exc, where)}, host {host.name}: {_message(exc)}")
            return None


def environment(templates: Mapping[str, str]) -> ImmutableSandboxedEnvironment:
    """The sandbox: the repository's Jinja2 templates only, strict undefined, a small set of globals."""

    def load(name: str) -> tuple[str, str, Any] | None:
        source = None if name.endswith(GO_SUFFIX) else templates.get(name)
        return None if source is None else (source, TEMPLATES + name, lambda: True)

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FunctionLoader(load), undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=True, auto_reload=False,
    )
    env.globals.clear()
    env.globals.update({"range": safe_range, "dict": dict, "namespace": jinja2.utils.Namespace})
    env.filters["quote"] = lambda v: shlex.quote(str(v))
    return env


def _not_found(name: object, templates: Mapping[str, str]) -> str:
    if isinstance(name, str) and name.endswith(GO_SUFFIX) and name in templates:
        return (f"includes {name!r}, a Go template (.tmpl): a Jinja2 template includes only Jinja2 ones "
                "(name them .j2)")
    return f"includes {name!r}, which is not in templates/"


def _at(exc: BaseException, where: str) -> str:
    name, line = _location(exc, where)
    return f"{name}, line {line}" if line else name


def _location(exc: BaseException, default: str) -> tuple[str, int]:
    """The innermost template frame of the traceback.

    Jinja rewrites the frames of the errors it handles to template lines; an error it lets through
    (a limit: time, memory) still has the compiled code's frames, mapped back here the way Jinja does.
    """
    if isinstance(exc, jinja2.TemplateSyntaxError):  # an include with a syntax error
        return exc.filename or default, exc.lineno
    name, line = default, 0
    tb = exc.__traceback__
    while tb is not None:
        compiled = tb.tb_frame.f_globals.get("__jinja_template__")
        filename = tb.tb_frame.f_code.co_filename
        if isinstance(compiled, jinja2.Template) and (compiled.filename or "").startswith(TEMPLATES):
            name, line = compiled.filename or default, compiled.get_corresponding_lineno(tb.tb_lineno)
        elif filename.startswith(TEMPLATES):
            name, line = filename, tb.tb_lineno
        tb = tb.tb_next
    return name, line


def _message(exc: BaseException) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"refused by the sandbox: {exc}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
