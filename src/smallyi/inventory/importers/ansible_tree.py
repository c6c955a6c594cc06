"""The group tree both Ansible formats describe, and how it flattens into small-yi hosts.

A host joins every group it is listed in and their parent groups (so ``--group parent`` selects what
``ansible parent`` would), never the implicit ``all``/``ungrouped``. Variables apply as Ansible
applies them: ``all``, then groups from the top down (same depth: by name), then the host's own.
``ansible_host``/``ansible_port``/``ansible_user`` (or ``ansible_ssh_*``) give address, port and user;
the address defaults to the inventory name; ``ansible_ssh_private_key_file`` (or
``ansible_private_key_file``) and ``ansible_timeout`` (or ``ansible_ssh_timeout``) become the host's
``ssh.private_key`` and ``ssh.connect_timeout``. Other one-line text variables become labels; lists,
mappings and ``ansible_*`` variables are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smallyi.inventory.hosts import LABEL_KEY_RE, HostSpec
from smallyi.inventory.importers.fields import (
    MAX_LABEL_VALUE,
    Problems,
    check_duplicates,
    check_host_name,
    make_spec,
    scalar_text,
)

IMPLICIT = ("all", "ungrouped")
#: small-yi field → the Ansible variable that gives it
FIELD_VARS = {"address": "ansible_host", "port": "ansible_port", "user": "ansible_user"}
#: older spellings, read as the names above (a host's ``ansible_ssh_user`` beats a group's ``ansible_user``)
#: a host's SSH settings → the Ansible variable that gives it (the key file; Ansible's connection timeout)
SSH_VARS = {"private_key": "ansible_ssh_private_key_file", "connect_timeout": "ansible_timeout"}
ALIASES = {"ansible_ssh_host": "ansible_host", "ansible_ssh_port": "ansible_port", "ansible_ssh_user": "ansible_user",
           "ansible_private_key_file": "ansible_ssh_private_key_file", "ansible_ssh_timeout": "ansible_timeout"}


@dataclass
class _Group:
    line: int
    vars: dict[str, tuple[object, int]] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


@dataclass
class _Host:
    line: int
    groups: list[str] = field(default_factory=list)
    vars: dict[str, tuple[object, int]] = field(default_factory=dict)


class Inventory:
    """Filled line by line by a parser, then flattened by ``hosts()``."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self._groups: dict[str, _Group] = {"all": _Group(0)}
        self._hosts: dict[str, _Host] = {}

    def group(self, name: str, line: int) -> None:
        self._groups.setdefault(name, _Group(line))

    def child(self, parent: str, child: str, line: int) -> None:
        self.group(parent, line)
        self.group(child, line)
        if child == parent:
            self.problems.add(line, f"group {parent!r} cannot be its own child")
        elif child not in self._groups[parent].children:
            self._groups[parent].children.append(child)

    def group_vars(self, group: str, key: str, value: object, line: int) -> None:
        self.group(group, line)
        self._groups[group].vars[ALIASES.get(key, key)] = (value, line)

    def host(self, group: str, name: str, hostvars: dict[str, object], line: int) -> None:
        problem = check_host_name(name)
        if problem:
            self.problems.add(line, problem)
            return
        self.group(group, line)
        host = self._hosts.setdefault(name, _Host(line))
        if group not in host.groups:
            host.groups.append(group)
        for key, value in hostvars.items():
            host.vars[ALIASES.get(key, key)] = (value, line)

    # -- flattening ---------------------------------------------------------------------------------

    def hosts(self) -> list[HostSpec]:
        parents = self._parents()
        depth = self._depths()
        entries: list[tuple[int, HostSpec]] = []
        for name, host in self._hosts.items():
            groups = self._with_ancestors(host.groups, parents)
            merged: dict[str, tuple[object, int]] = dict(self._groups["all"].vars)
            for g in sorted((g for g in groups if g != "all"), key=lambda g: (depth.get(g, 1), g)):
                merged.update(self._groups[g].vars)
            merged.update(host.vars)
            spec = self._spec(name, host, [g for g in groups if g not in IMPLICIT], merged)
            if spec is not None:
                entries.append((host.line, spec))
        check_duplicates(entries, self.problems)
        self.problems.raise_if_any()
        return [spec for _, spec in entries]

    def _spec(
        self, name: str, host: _Host, groups: list[str], merged: dict[str, tuple[object, int]]
    ) -> HostSpec | None:
        raw: dict[str, object] = {"name": name, "address": name, "groups": groups}
        lines: dict[str, int] = {}
        for fld, var in FIELD_VARS.items():
            if var in merged:
                raw[fld], lines[fld] = merged[var]
        ssh: dict[str, object] = {}
        for key, var in SSH_VARS.items():
            if var in merged:
                ssh[key], lines["ssh"] = merged[var]
        raw["ssh"] = ssh
        labels: dict[str, str] = {}
        for key, (value, _) in merged.items():
            text = scalar_text(value)
            if (
                not key.startswith("ansible_") and LABEL_KEY_RE.match(key) and text is not None
                and len(text) <= MAX_LABEL_VALUE and "\n" not in text
            ):
                labels[key] = text
        raw["labels"] = labels
        spec, bad = make_spec(raw)
        for fld, message in bad:
            self.problems.add(lines.get(fld, host.line), f"host {name!r}: {message}")
        return spec

    def _parents(self) -> dict[str, list[str]]:
        parents: dict[str, list[str]] = {}
        for name, group in self._groups.items():
            for child in group.children:
                parents.setdefault(child, []).append(name)
        return parents

    def _with_ancestors(self, direct: list[str], parents: dict[str, list[str]]) -> list[str]:
        out: list[str] = []
        todo = list(direct)
        while todo:
            g = todo.pop(0)
            if g in out:
                continue
            out.append(g)
            todo.extend(parents.get(g, []))
        return out

    def _depths(self) -> dict[str, int]:
        """Distance of each group from the top (``all`` is 0); a cycle is reported, not followed."""
        depth: dict[str, int] = {"all": 0}
        has_parent = {c for g in self._groups.values() for c in g.children}
        level = [g for g in self._groups if g not in has_parent and g != "all"]
        for g in self._groups["all"].children:
            if g not in level:
                level.append(g)
        seen: set[str] = set(level)
        d = 1
        while level:
            for g in level:
                depth.setdefault(g, d)
            nxt = []
            for g in level:
                for c in self._groups[g].children:
                    if c not in seen:
                        seen.add(c)
                        nxt.append(c)
            level, d = nxt, d + 1
        for name, group in self._groups.items():
            if name not in depth:
                self.problems.add(group.line, f"group {name!r} is part of a cycle of [children] groups")
        return depth
