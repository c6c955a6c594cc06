"""The repository's ``hosts/*.yaml``: hosts, their groups, and host and group variables. Pure.

One file per group, or any split you like::

    group: web                  # optional: every host of this file joins it
    vars:                       # optional: the group's variables (needs ``group``)
      worker_processes: 4
    hosts:
      - name: web-01
        address: 10.0.0.11
        port: 22                # host fields as in small-yi's own inventory YAML
        user: deploy
        labels: {env: prod}
        groups: [prod]          # more groups besides the file's
        vars:                   # the host's own variables
          server_name: web-01.example.com

A file may hold only ``group`` and ``vars`` (variables for a group whose hosts are listed elsewhere).
A host's variables are its groups' (in the order of its groups: the file's group first, then
``groups:``), then its own, each overriding the one before.

Whoever can push gets no more than the GitOps role: the name ``local`` (the server itself, host and
group) is refused, and of a host's ``ssh:`` settings, those the API keeps for ``secrets.write`` are
refused unless the server's own settings allow them (:class:`RepoTrust`): no key or known_hosts file
on the server, only the stored key secrets ``gitops.ssh_key_secrets`` lists, no host-key policy
weaker than the config's ``ssh.host_key_policy``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from smallyi.gitops.problems import RepoProblems
from smallyi.inventory.hosts import HOST_KEY_POLICIES, LOCAL_NAME, HostSpec, SSHOverrides
from smallyi.inventory.importers import yaml_nodes as yn
from smallyi.inventory.importers.fields import HOST_KEYS, Problems, check_group_name, make_spec

HOSTS_DIR = "hosts/"
FILE_KEYS = ("group", "vars", "hosts")
#: names templates see besides the variables: a variable cannot take one of them
RESERVED = frozenset({"host", "groups", "commit", "vars", "path", "range", "dict", "namespace"})
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RepoTrust:
    """What the server lets a repository's hosts set of what the API keeps for ``secrets.write``."""

    #: the config's ``ssh.host_key_policy``: a host may ask for it or a stricter one
    host_key_policy: str = "strict"
    #: ``gitops.ssh_key_secrets``: the stored secrets a host may name as ``ssh.private_key_secret``
    key_secrets: frozenset[str] = frozenset()

    def refusals(self, ssh: SSHOverrides) -> list[str]:
        """Why each of these settings is not the repository's to give (empty: all are)."""
        out: list[str] = []
        if ssh.private_key is not None:
            out.append("ssh.private_key: a repository cannot name a key file on the server (that would offer "
                       "it to an address the repository chooses); store the key as a secret, have the server's "
                       "gitops.ssh_key_secrets list it, and give ssh.private_key_secret")
        if ssh.private_key_secret is not None and ssh.private_key_secret not in self.key_secrets:
            out.append(f"ssh.private_key_secret {ssh.private_key_secret!r}: the server's gitops.ssh_key_secrets "
                       "does not list this secret, so a repository may not use it")
        if ssh.known_hosts is not None:
            out.append("ssh.known_hosts: a repository cannot name a file on the server; the host's key is "
                       "checked against the server's ssh.known_hosts")
        policy = ssh.host_key_policy
        if policy is not None and _strictness(policy) > _strictness(self.host_key_policy):
            out.append(f"ssh.host_key_policy {policy!r} is weaker than the server's ssh.host_key_policy "
                       f"({self.host_key_policy}): a repository cannot loosen host-key checks")
        return out


def _strictness(policy: str) -> int:
    return HOST_KEY_POLICIES.index(policy) if policy in HOST_KEY_POLICIES else len(HOST_KEY_POLICIES)


def reserved(name: str, what: str) -> str | None:
    """Why ``name`` is not a repository's to use, if it is the server's own host or group."""
    if name == LOCAL_NAME:
        return f"{what} {name!r} is reserved for the small-yi server itself; use another name"
    return None


@dataclass(frozen=True)
class RepoInventory:
    """What ``hosts/`` declares: hosts in file order, and the variables of hosts and groups."""

    hosts: list[HostSpec] = field(default_factory=list)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: host name → (file, line) it is declared at, for problems found later (against the inventory)
    origins: dict[str, tuple[str, int]] = field(default_factory=dict)

    def variables(self, host: HostSpec) -> dict[str, Any]:
        """The host's variables: its groups' in order, then its own."""
        merged: dict[str, Any] = {}
        for g in host.groups:
            merged.update(self.group_vars.get(g, {}))
        merged.update(self.host_vars.get(host.name, {}))
        return merged

    def groups(self) -> set[str]:
        return {g for h in self.hosts for g in h.groups} | set(self.group_vars)


def is_hosts_file(path: str) -> bool:
    return path.startswith(HOSTS_DIR) and path.endswith((".yaml", ".yml"))


def parse(files: Mapping[str, str], trust: RepoTrust = RepoTrust()) -> RepoInventory:
    """Every ``hosts/*.yaml`` file (path → text) into one inventory; InputError listing every problem
    (a refused name or ``ssh:`` setting among them)."""
    problems = RepoProblems("hosts/")
    inv = RepoInventory()
    first_seen: dict[str, str] = {}
    vars_from: dict[str, str] = {}
    for path in sorted(p for p in files if is_hosts_file(p)):
        _file(path, files[path], inv, problems, first_seen, vars_from, trust)
    problems.raise_if_any()
    return inv


def _file(path: str, text: str, inv: RepoInventory, problems: RepoProblems,
          first_seen: dict[str, str], vars_from: dict[str, str], trust: RepoTrust) -> None:
    local = Problems(path)
    root = yn.compose(text, local)
    for n, m in local.items:
        problems.add(path, n, m)
    if root is None or (isinstance(root, yn.ScalarNode) and root.tag.endswith(":null")):
        return
    if not isinstance(root, yn.MappingNode):
        problems.add(path, yn.line(root), "expected a mapping with group, vars and hosts at the top")
        return
    fields = dict(yn.items(root, local))
    for key, node in fields.items():
        if key not in FILE_KEYS:
            problems.add(path, yn.line(node), f"unknown key {key!r} (expected {', '.join(FILE_KEYS)})")
    group = ""
    if "group" in fields:
        group = str(yn.value(fields["group"], local) or "")
        problem = check_group_name(group) or reserved(group, "group")
        if problem:
            problems.add(path, yn.line(fields["group"]), problem)
            group = ""
    if "vars" in fields:
        node = fields["vars"]
        if not group:
            problems.add(path, yn.line(node), "'vars' at the top needs a 'group' to belong to")
        elif group in vars_from:
            problems.add(path, yn.line(node), f"variables of group {group!r} are already given in {vars_from[group]}")
        else:
            vars_from[group] = path
            inv.group_vars[group] = _vars(path, node, problems)
    if "hosts" in fields:
        _hosts(path, fields["hosts"], group, inv, problems, first_seen, trust)


def _hosts(path: str, node: yn.Node, group: str, inv: RepoInventory, problems: RepoProblems,
           first_seen: dict[str, str], trust: RepoTrust) -> None:
    if isinstance(node, yn.ScalarNode) and node.tag.endswith(":null"):
        return
    if not isinstance(node, yn.SequenceNode):
        problems.add(path, yn.line(node), "'hosts' must be a list of hosts (- name: ..., address: ...)")
        return
    for item in node.value:
        line = yn.line(item)
        if not isinstance(item, yn.MappingNode):
            problems.add(path, line, "a host must be a mapping with at least name and address")
            continue
        local = Problems(path)
        raw: dict[str, Any] = {}
        lines: dict[str, int] = {}
        host_vars: dict[str, Any] = {}
        for key, value_node in yn.items(item, local):
            if key == "vars":
                host_vars = _vars(path, value_node, problems)
            elif key in HOST_KEYS:
                raw[key] = yn.value(value_node, local)
                lines[key] = yn.line(value_node)
            else:
                problems.add(path, yn.line(value_node),
                             f"unknown host key {key!r} (expected {', '.join((*HOST_KEYS, 'vars'))})")
        for n, m in local.items:
            problems.add(path, n, m)
        spec, bad = make_spec(raw, extra_groups=(group,) if group else ())
        if spec is not None and group:  # the file's group first: its variables come first
            spec = replace(spec, groups=tuple(dict.fromkeys((group, *spec.groups))))
        who = f"host {raw['name']!r}: " if isinstance(raw.get("name"), str) else ""
        for fld, message in bad:
            problems.add(path, lines.get(fld, line), who + message if fld != "name" else message)
        if spec is None:
            continue
        refused: list[tuple[int, str]] = []
        name_problem = reserved(spec.name, "host name")
        if name_problem:
            refused.append((lines.get("name", line), name_problem))
        for g in spec.groups:
            group_problem = reserved(g, "group")
            if group_problem:
                refused.append((lines.get("groups", line), who + group_problem))
        refused += [(lines.get("ssh", line), who + m) for m in trust.refusals(spec.ssh)]
        if refused:  # the whole commit is refused: a sync that left this host out would remove it
            for n, m in refused:
                problems.add(path, n, m)
            continue
        if spec.name in first_seen:
            problems.add(path, line, f"host {spec.name!r} is listed twice (first in {first_seen[spec.name]})")
            continue
        first_seen[spec.name] = f"{path}:{line}"
        inv.origins[spec.name] = (path, line)
        inv.hosts.append(spec)
        if host_vars:
            inv.host_vars[spec.name] = host_vars


def _vars(path: str, node: yn.Node, problems: RepoProblems) -> dict[str, Any]:
    if isinstance(node, yn.ScalarNode) and node.tag.endswith(":null"):
        return {}
    if not isinstance(node, yn.MappingNode):
        problems.add(path, yn.line(node), "'vars' must be a mapping of names to values")
        return {}
    local = Problems(path)
    out: dict[str, Any] = {}
    for key, value_node in yn.items(node, local):
        if not _VAR_NAME.match(key):
            problems.add(path, yn.line(value_node),
                         f"variable name {key!r} is not valid: use letters, digits and '_', not starting with a digit")
        elif key in RESERVED:
            problems.add(path, yn.line(value_node),
                         f"variable name {key!r} is reserved (templates see it as something else); rename it")
        else:
            out[key] = yn.value(value_node, local)
    for n, m in local.items:
        problems.add(path, n, m)
    return out
