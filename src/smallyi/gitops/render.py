"""Render every file of a commit for every target host, in a Jinja2 sandbox, before anything is written.

Pure: a snapshot in, the desired files out, or one TemplateError listing what did not render (each
naming the template, the line and the host). Templates come from Git, so they run in Jinja2's
``ImmutableSandboxedEnvironment``: no attribute starting with ``_`` (no ``__class__``, ``__globals__``,
``mro``), no mutation of the shared variables, no loader but the repository's own ``templates/``, and
only a few globals. Undefined variables are errors (``StrictUndefined``), never empty strings.

A template sees: its host's variables (group variables, then the host's own) as plain names and as
``vars``; ``host`` (name, address, port, user, labels, groups, description); ``groups`` (each of the
host's groups → its variables); ``commit`` (sha, short, author, email, date, message, subject,
branch). ``path`` may use the same names.

Each file's text is bounded while it is written (``bounds.bounded_text``); the time and memory of the
whole render are bounded by the process it runs in (``gitops.worker``), whose limits stop it with a
``RenderStopped`` that is reported like any template problem, naming the template, line and host.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from smallyi.errors import InputError, TemplateError
from smallyi.execution.files import check_path
from smallyi.gitops import inventory as repo_inventory
from smallyi.gitops import manifest as repo_manifest
from smallyi.gitops.bounds import OutputTooLarge, RenderLimits, RenderStopped, bounded_text, out_of_memory
from smallyi.gitops.inventory import RepoInventory, RepoTrust
from smallyi.gitops.manifest import Entry, Manifest
from smallyi.gitops.problems import RepoProblems, summary
from smallyi.gitops.snapshot import Commit, Snapshot
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.selectors import missing_names, select

TEMPLATES = "templates/"


@dataclass(frozen=True)
class Rendered:
    """One file for one host, as the commit wants it."""

    host: HostSpec
    path: str
    content: bytes
    entry: Entry

    @property
    def digest(self) -> str:
        return digest(self.content)


@dataclass(frozen=True)
class Desired:
    """Everything a commit wants: its inventory and every rendered file."""

    commit: Commit
    inventory: RepoInventory
    files: list[Rendered] = field(default_factory=list)

    def by_host(self) -> dict[HostSpec, list[Rendered]]:
        out: dict[HostSpec, list[Rendered]] = {}
        for r in self.files:
            out.setdefault(r.host, []).append(r)
        return out


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def render_commit(snapshot: Snapshot, *, trust: RepoTrust = RepoTrust(),
                  limits: RenderLimits = RenderLimits()) -> Desired:
    """Parse ``hosts/`` (under ``trust``) and ``sync.yaml`` and render every entry for every target host."""
    inv = repo_inventory.parse(snapshot.texts(repo_inventory.HOSTS_DIR), trust)
    manifest = repo_manifest.parse(snapshot.text(repo_manifest.MANIFEST))
    templates = {p.removeprefix(TEMPLATES): t for p, t in snapshot.texts(TEMPLATES).items()}
    return render(manifest, inv, templates, snapshot.commit, limits=limits)


def render(manifest: Manifest, inv: RepoInventory, templates: Mapping[str, str], commit: Commit, *,
           limits: RenderLimits = RenderLimits()) -> Desired:
    """See the module docstring; raises InputError (targets) or TemplateError (rendering)."""
    targets = _targets(manifest, inv, templates)
    problems: list[str] = []
    try:
        files = _render_all(manifest, inv, templates, commit, targets, limits, problems)
    except RenderStopped as exc:  # time or memory ran out: what rendered so far is dropped
        problems.append(f"{exc.where or f'at commit {commit.short}'}: {exc.message}")
        files = []
    except MemoryError:
        problems.append(f"at commit {commit.short}: {out_of_memory(limits.memory)}")
        files = []
    if problems:
        raise TemplateError(summary(f"{len(problems)} template problem(s) at commit {commit.short}, "
                                    "nothing was written anywhere", problems), problems)
    return Desired(commit, inv, files)


def _render_all(manifest: Manifest, inv: RepoInventory, templates: Mapping[str, str], commit: Commit,
                targets: dict[int, list[HostSpec]], limits: RenderLimits, problems: list[str]) -> list[Rendered]:
    env = environment(templates)
    files: list[Rendered] = []
    seen: dict[tuple[str, str], int] = {}
    compiled: dict[str, jinja2.Template | None] = {}
    for entry in manifest.entries:
        template = _compile(env, entry.template, compiled, problems)
        path_template = _compile_text(env, entry.path, f"sync.yaml line {entry.line} (path)", problems)
        if template is None or path_template is None:
            continue
        for host in targets[entry.line]:
            context = template_context(host, inv, commit)
            path = _run(path_template, context, f"sync.yaml line {entry.line} (path)", host, problems, limits)
            if path is None:
                continue
            path = path.strip()
            try:
                check_path(path)
            except InputError as exc:
                problems.append(f"sync.yaml line {entry.line}, host {host.name}: {exc.message}")
                continue
            if (host.name, path) in seen:
                problems.append(f"sync.yaml line {entry.line}, host {host.name}: {path} is also written by "
                                f"the entry on line {seen[host.name, path]}")
                continue
            seen[host.name, path] = entry.line
            text = _run(template, {**context, "path": path}, TEMPLATES + entry.template, host, problems, limits)
            if text is None:
                continue
            files.append(Rendered(host, path, text.encode("utf-8"), entry))
    return files


def environment(templates: Mapping[str, str]) -> ImmutableSandboxedEnvironment:
    """The sandbox: the repository's templates only, strict undefined, a small set of globals."""

    def load(name: str) -> tuple[str, str, Any] | None:
        source = templates.get(name)
        return None if source is None else (source, TEMPLATES + name, lambda: True)

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FunctionLoader(load), undefined=jinja2.StrictUndefined, autoescape=False,
        keep_trailing_newline=True, auto_reload=False,
    )
    env.globals.clear()
    env.globals.update({"range": safe_range, "dict": dict, "namespace": jinja2.utils.Namespace})
    env.filters["quote"] = lambda v: shlex.quote(str(v))
    return env


def template_context(host: HostSpec, inv: RepoInventory, commit: Commit) -> dict[str, Any]:
    """What a template sees for ``host``: plain values (``tojson`` works); the sandbox forbids mutating them."""
    variables = inv.variables(host)
    return {
        **variables,
        "vars": variables,
        "host": {
            "name": host.name, "address": host.address, "port": host.port, "user": host.user,
            "labels": dict(host.labels), "groups": list(host.groups), "description": host.description,
        },
        "groups": {g: inv.group_vars.get(g, {}) for g in host.groups},
        "commit": commit.to_dict(),
    }


def _targets(manifest: Manifest, inv: RepoInventory, templates: Mapping[str, str]) -> dict[int, list[HostSpec]]:
    problems = RepoProblems(repo_manifest.MANIFEST)
    groups = inv.groups()
    out: dict[int, list[HostSpec]] = {}
    for e in manifest.entries:
        if e.template not in templates:
            problems.add(repo_manifest.MANIFEST, e.line, f"template {e.template!r} is not in templates/")
        if e.target.group and e.target.group not in groups:
            problems.add(repo_manifest.MANIFEST, e.line, f"target group {e.target.group!r} is not in hosts/")
        missing = missing_names(e.target, inv.hosts)
        if missing:
            problems.add(repo_manifest.MANIFEST, e.line, f"target host(s) not in hosts/: {', '.join(missing)}")
        out[e.line] = select(e.target, inv.hosts)
    problems.raise_if_any()
    return out


def _compile(env: ImmutableSandboxedEnvironment, name: str, cache: dict[str, jinja2.Template | None],
             problems: list[str]) -> jinja2.Template | None:
    if name not in cache:
        try:
            cache[name] = env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            cache[name] = None
            problems.append(f"{exc.filename or TEMPLATES + name}, line {exc.lineno}: syntax error: {exc.message}")
        except jinja2.TemplateNotFound as exc:
            cache[name] = None
            problems.append(f"{TEMPLATES}{name}: includes {exc.name!r}, which is not in templates/")
    return cache[name]


def _compile_text(env: ImmutableSandboxedEnvironment, source: str, where: str,
                  problems: list[str]) -> jinja2.Template | None:
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        problems.append(f"{where}: syntax error: {exc.message}")
        return None


def _run(template: jinja2.Template, context: dict[str, Any], where: str, host: HostSpec,
         problems: list[str], limits: RenderLimits) -> str | None:
    """The text, bounded while it is written; None with a problem noted. RenderStopped ends the render."""
    try:
        return bounded_text(template.generate(context), limits.output)
    except OutputTooLarge as exc:
        problems.append(f"{where}, host {host.name}: {exc}")
        return None
    except RenderStopped as exc:
        raise RenderStopped(exc.message, where=f"{_at(exc, where)}, host {host.name}") from None
    except MemoryError as exc:
        raise RenderStopped(out_of_memory(limits.memory), where=f"{_at(exc, where)}, host {host.name}") from None
    except Exception as exc:  # anything a template can raise: undefined, sandbox, type errors, ...
        problems.append(f"{_at(exc, where)}, host {host.name}: {_message(exc)}")
        return None


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
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"includes {exc.name!r}, which is not in templates/"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
