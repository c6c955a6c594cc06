"""``sync.yaml``: which template goes to which path on which hosts, with owner, mode, check, reload. Pure.

::

    files:
      - template: nginx.conf.tmpl        # a file under templates/
        path: /etc/nginx/nginx.conf       # may use variables: /srv/{{ host.name }}/app.conf
        target: {group: web}              # group, hosts and/or labels, as a task's target
        owner: root:root                  # optional: USER or USER:GROUP (default: keep the current owner)
        mode: "0644"                      # optional, octal (default: keep the current mode, 0644 if new)
        mkdir: true                       # optional: create missing parent directories (default: false)
        check: nginx -t                   # optional: runs after the write; failing, the old file comes back
        reload: systemctl reload nginx    # optional: runs after a successful check

``check`` and ``reload`` run through the login user's shell with ``SMALLYI_PATH`` set to the file's
path (shell-quoted), and only on hosts where the file changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from smallyi.errors import InputError
from smallyi.execution.files import check_mode, parse_owner
from smallyi.gitops.problems import RepoProblems
from smallyi.inventory.importers import yaml_nodes as yn
from smallyi.inventory.importers.fields import Problems, check_group_name, check_host_name, parse_labels
from smallyi.inventory.selectors import Selector
from smallyi.policy import command_text

MANIFEST = "sync.yaml"
ENTRY_KEYS = ("template", "path", "target", "owner", "mode", "mkdir", "check", "reload")
TARGET_KEYS = ("group", "hosts", "labels")
MAX_COMMAND = 4096


@dataclass(frozen=True)
class Entry:
    """One file of the manifest; ``path`` is a template itself (rendered per host)."""

    template: str
    path: str
    target: Selector
    line: int
    owner: str = ""
    mode: int | None = None
    check: str = ""
    reload: str = ""
    mkdir: bool = False


@dataclass(frozen=True)
class Manifest:
    entries: list[Entry] = field(default_factory=list)


def parse(text: str | None) -> Manifest:
    """The manifest from ``sync.yaml``'s text; InputError listing every problem with its line."""
    problems = RepoProblems(MANIFEST)
    if text is None:
        raise InputError(f"the repository has no {MANIFEST} at its top: it says which template goes where "
                         "(see docs/gitops.md)", field="repo")
    local = Problems(MANIFEST)
    root = yn.compose(text, local)
    entries: list[Entry] = []
    if isinstance(root, yn.MappingNode):
        fields = dict(yn.items(root, local))
        for key, node in fields.items():
            if key != "files":
                problems.add(MANIFEST, yn.line(node), f"unknown key {key!r} at the top (expected files)")
        files = fields.get("files")
        if files is None:
            problems.add(MANIFEST, 1, "no 'files:' list")
        elif not isinstance(files, yn.SequenceNode):
            problems.add(MANIFEST, yn.line(files), "'files' must be a list of entries (- template: ..., path: ...)")
        else:
            for item in files.value:
                entry = _entry(item, problems, local)
                if entry is not None:
                    entries.append(entry)
    elif root is not None:
        problems.add(MANIFEST, yn.line(root), "expected a mapping with 'files:' at the top")
    elif not local.items:
        problems.add(MANIFEST, 1, "the file is empty; it needs a 'files:' list")
    for n, m in local.items:
        problems.add(MANIFEST, n, m)
    problems.raise_if_any()
    return Manifest(entries)


def _entry(node: yn.Node, problems: RepoProblems, local: Problems) -> Entry | None:
    line = yn.line(node)
    if not isinstance(node, yn.MappingNode):
        problems.add(MANIFEST, line, "an entry must be a mapping with template, path and target")
        return None
    fields = dict(yn.items(node, local))
    ok = True

    def bad(at: yn.Node | None, message: str) -> None:
        nonlocal ok
        ok = False
        problems.add(MANIFEST, yn.line(at) if at is not None else line, message)

    for key, value_node in fields.items():
        if key not in ENTRY_KEYS:
            bad(value_node, f"unknown key {key!r} (expected {', '.join(ENTRY_KEYS)})")
    text: dict[str, str] = {}
    for key in ("template", "path", "owner", "check", "reload", "mode"):
        scalar = fields.get(key)
        if scalar is None:
            continue
        if not isinstance(scalar, yn.ScalarNode) or scalar.tag.endswith(":null"):
            bad(scalar, f"{key} must be text")
            continue
        text[key] = str(scalar.value)  # the text as written: mode 0644 stays "0644"
    for key in ("template", "path"):
        if not text.get(key):
            bad(fields.get(key), f"entry has no {key}")
    template = text.get("template", "")
    if template and (template.startswith("/") or ".." in template.split("/")):
        bad(fields["template"], f"template {template!r} must be a name under templates/ (no '/' at the start, no '..')")
    path = text.get("path", "")
    if path and not path.startswith(("/", "{{")):
        bad(fields["path"], f"path {path!r} is not absolute: target paths start with '/'")
    owner = text.get("owner", "")
    if owner:
        try:
            parse_owner(owner)
        except InputError as exc:
            bad(fields["owner"], exc.message)
    mode = None
    if "mode" in text:
        try:
            mode = check_mode(int(text["mode"], 8))
        except (ValueError, InputError):
            bad(fields["mode"], f"mode {text['mode']!r} is not an octal permission mode such as \"0644\"")
    for key in ("check", "reload"):
        command = text.get(key, "")
        why = command_text.problem(command, key)
        if len(command) > MAX_COMMAND:
            bad(fields[key], f"{key} is longer than {MAX_COMMAND} characters")
        elif why is not None:
            bad(fields[key], why)
    mkdir = False
    if "mkdir" in fields:
        value = yn.value(fields["mkdir"], local)
        if not isinstance(value, bool):
            bad(fields["mkdir"], f"mkdir {value!r} is not true or false")
        mkdir = value is True
    target = _target(fields.get("target"), bad, local)
    if not ok or target is None:
        return None
    return Entry(template=template, path=path, target=target, line=line, owner=owner, mode=mode,
                 check=text.get("check", "").strip(), reload=text.get("reload", "").strip(), mkdir=mkdir)


def _target(node: yn.Node | None, bad: Callable[[yn.Node | None, str], None], local: Problems) -> Selector | None:
    if node is None:
        bad(None, "entry has no target (group, hosts and/or labels)")
        return None
    if not isinstance(node, yn.MappingNode):
        bad(node, "target must be a mapping: {group: web}, {hosts: [a, b]} or {labels: {env: prod}}")
        return None
    fields = dict(yn.items(node, local))
    group: str | None = None
    hosts: tuple[str, ...] = ()
    labels: dict[str, str] = {}
    for key, value_node in fields.items():
        value = yn.value(value_node, local)
        if key == "group":
            problem = check_group_name(value)
            if problem:
                bad(value_node, problem)
            group = str(value)
        elif key == "hosts":
            names = value if isinstance(value, list) else [value]
            for name in names:
                problem = check_host_name(name)
                if problem:
                    bad(value_node, problem)
            hosts = tuple(str(n) for n in names)
        elif key == "labels":
            labels, label_problems = parse_labels(value)
            for p in label_problems:
                bad(value_node, p)
        else:
            bad(value_node, f"unknown target key {key!r} (expected {', '.join(TARGET_KEYS)})")
    if not group and not hosts and not labels:
        bad(node, "target is empty: give a group, hosts or labels")
        return None
    return Selector(group=group or None, hosts=hosts, labels=labels)
