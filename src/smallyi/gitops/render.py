"""Render every file of a commit for every target host, each in its sandbox, before anything is written.

Pure: a snapshot in, the desired files out, or one TemplateError listing what did not render (each
naming the template, the line and the host). A template's name says its language: ``*.tmpl`` is a Go
template (``gitops.gotemplate``, the engine SOPs use: ``{{ .worker_processes }}``), any other name is
Jinja2 (``gitops.jinja``; ``*.j2`` by convention). A manifest entry's ``path`` is in its template's
language. Both sandboxes reach only the values given; a missing value is an error, never empty text.

A template sees: its host's variables (group variables, then the host's own) as plain names and as
``vars``; ``host`` (name, address, port, user, labels, groups, description); ``groups`` (each of the
host's groups → its variables); ``commit`` (sha, short, author, email, date, message, subject,
branch); ``path``. The same names, with a dot in Go: ``.worker_processes``, ``.host.name``.

Each file's text is bounded while it is written (``bounds.bounded_text``); the time and memory of the
whole render are bounded by the process it runs in (``gitops.worker``), whose limits stop it with a
``RenderStopped`` that is reported like any template problem, naming the template, line and host.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from smallyi.errors import InputError, TemplateError
from smallyi.execution.files import check_path
from smallyi.gitops import inventory as repo_inventory
from smallyi.gitops import manifest as repo_manifest
from smallyi.gitops.bounds import RenderLimits, RenderStopped, out_of_memory
from smallyi.gitops.gotemplate import GoEngine, is_go
from smallyi.gitops.inventory import RepoInventory, RepoTrust
from smallyi.gitops.jinja import JinjaEngine
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
    engines = _Engines(templates, limits, problems)
    files: list[Rendered] = []
    seen: dict[tuple[str, str], int] = {}
    for entry in manifest.entries:
        engine = engines.of(entry.template)
        template = engine.compile(entry.template, problems)
        path_template = engine.compile_text(entry.path, f"sync.yaml line {entry.line} (path)", problems)
        if template is None or path_template is None:
            continue
        for host in targets[entry.line]:
            context = template_context(host, inv, commit)
            path = path_template.run(context, host, problems, limits)
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
            text = template.run({**context, "path": path}, host, problems, limits)
            if text is None:
                continue
            files.append(Rendered(host, path, text.encode("utf-8"), entry))
    return files


class _Template(Protocol):
    def run(self, context: dict[str, Any], host: HostSpec, problems: list[str],
            limits: RenderLimits) -> str | None: ...


class _Engine(Protocol):
    def compile(self, name: str, problems: list[str]) -> _Template | None: ...

    def compile_text(self, source: str, where: str, problems: list[str]) -> _Template | None: ...


class _Engines:
    """The engine of each template by its name (``.tmpl``: Go; any other: Jinja2), each built on first use."""

    def __init__(self, templates: Mapping[str, str], limits: RenderLimits, problems: list[str]) -> None:
        self.templates, self.limits, self.problems = templates, limits, problems
        self._go: GoEngine | None = None
        self._jinja: JinjaEngine | None = None

    def of(self, name: str) -> _Engine:
        if is_go(name):
            if self._go is None:
                self._go = GoEngine(self.templates, self.problems, limits=self.limits)
            return self._go
        if self._jinja is None:
            self._jinja = JinjaEngine(self.templates)
        return self._jinja


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
