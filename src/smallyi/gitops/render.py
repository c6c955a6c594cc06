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
from smallyi.gitops.inventory import RepoInventory
from smallyi.gitops.manifest import Entry, Manifest
from smallyi.gitops.problems import RepoProblems, summary
from smallyi.gitops.snapshot import Commit, Snapshot
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.selectors import missing_names, select

TEMPLATES = "templates/"
#: the largest file a template may produce
MAX_OUTPUT = 4 * 1024 * 1024


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


def render_commit(snapshot: Snapshot) -> Desired:
    """Parse ``hosts/`` and ``sync.yaml`` and render every entry for every target host."""
    inv = repo_inventory.parse(snapshot.texts(repo_inventory.HOSTS_DIR))
    manifest = repo_manifest.parse(snapshot.text(repo_manifest.MANIFEST))
    templates = {p.removeprefix(TEMPLATES): t for p, t in snapshot.texts(TEMPLATES).items()}
    return render(manifest, inv, templates, snapshot.commit)


def render(manifest: Manifest, inv: RepoInventory, templates: Mapping[str, str], commit: Commit) -> Desired:
    """See the module docstring; raises InputError (targets) or TemplateError (rendering)."""
    targets = _targets(manifest, inv, templates)
    env = environment(templates)
    problems: list[str] = []
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
            path = _run(path_template, context, f"sync.yaml line {entry.line} (path)", host, problems)
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
            text = _run(template, {**context, "path": path}, TEMPLATES + entry.template, host, problems)
            if text is None:
                continue
            content = text.encode("utf-8")
            if len(content) > MAX_OUTPUT:
                problems.append(f"{TEMPLATES}{entry.template}, host {host.name}: renders {len(content)} bytes, "
                                f"more than {MAX_OUTPUT // (1024 * 1024)} MiB")
                continue
            files.append(Rendered(host, path, content, entry))
    if problems:
        raise TemplateError(summary(f"{len(problems)} template problem(s) at commit {commit.short}, "
                                    "nothing was written anywhere", problems), problems)
    return Desired(commit, inv, files)


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
         problems: list[str]) -> str | None:
    try:
        return template.render(context)
    except Exception as exc:  # anything a template can raise: undefined, sandbox, type errors, ...
        name, line = _location(exc, where)
        at = f"{name}, line {line}" if line else name
        problems.append(f"{at}, host {host.name}: {_message(exc)}")
        return None


def _location(exc: BaseException, default: str) -> tuple[str, int]:
    """The innermost template frame of the traceback (Jinja rewrites frames to template lines)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):  # an include with a syntax error
        return exc.filename or default, exc.lineno
    name, line = default, 0
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(TEMPLATES):
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
