"""small-yi's own YAML inventory, the format the test fleet (``smallyi.testing``) writes::

    group: fleet                 # optional: every host joins it (or ``groups: [a, b]``)
    hosts:
      - name: host-001
        address: 127.0.1.1
        port: 2222               # optional, default 22
        user: fleet              # optional, default: the config's ssh.user
        labels: {env: prod}      # optional
        groups: [web]            # optional, besides the file's group(s)
        description: ...         # optional
        enabled: true            # optional

``groups:`` may also list sections, ``- name: web`` with their own ``hosts:``. A bare list of hosts is
accepted too.
"""

from __future__ import annotations

from typing import Any

from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.importers import yaml_nodes as yn
from smallyi.inventory.importers.fields import (
    HOST_KEYS,
    Problems,
    check_duplicates,
    check_group_name,
    make_spec,
)

TOP_KEYS = ("group", "groups", "hosts")
SECTION_KEYS = ("name", "hosts")


def parse(text: str, source: str = "inventory.yaml") -> list[HostSpec]:
    problems = Problems(source)
    root = yn.compose(text, problems)
    entries: list[tuple[int, HostSpec]] = []
    if isinstance(root, yn.SequenceNode):
        _hosts(root, (), entries, problems)
    elif isinstance(root, yn.MappingNode):
        _top(root, entries, problems)
    elif root is not None:
        problems.add(yn.line(root), "expected a mapping with 'hosts:' (or a list of hosts) at the top")
    check_duplicates(entries, problems)
    problems.raise_if_any()
    return [spec for _, spec in entries]


def _top(root: yn.MappingNode, entries: list[tuple[int, HostSpec]], problems: Problems) -> None:
    common: list[str] = []
    sections: list[tuple[str, yn.Node]] = []
    hosts_node: yn.Node | None = None
    for key, node in yn.items(root, problems):
        if key == "group":
            _group_name(node, common, problems)
        elif key == "groups" and isinstance(node, yn.SequenceNode):
            for item in node.value:
                if isinstance(item, yn.MappingNode):
                    sections.extend(_section(item, problems))
                else:
                    _group_name(item, common, problems)
        elif key == "groups":
            problems.add(yn.line(node), "'groups' must be a list of group names or of sections (name, hosts)")
        elif key == "hosts":
            hosts_node = node
        else:
            problems.add(yn.line(node), f"unknown key {key!r} at the top (expected {', '.join(TOP_KEYS)})")
    if hosts_node is not None:
        _hosts(hosts_node, tuple(common), entries, problems)
    for name, node in sections:
        _hosts(node, (name, *common), entries, problems)


def _group_name(node: yn.Node, into: list[str], problems: Problems) -> None:
    name = yn.value(node, problems)
    problem = check_group_name(name)
    if problem:
        problems.add(yn.line(node), problem)
    elif name not in into:
        into.append(name)


def _section(node: yn.MappingNode, problems: Problems) -> list[tuple[str, yn.Node]]:
    fields = dict(yn.items(node, problems))
    for key in fields:
        if key not in SECTION_KEYS:
            problems.add(yn.line(fields[key]),
                         f"unknown key {key!r} in a group section (expected name, hosts)")
    if "name" not in fields:
        problems.add(yn.line(node), "a group section needs a 'name'")
        return []
    names: list[str] = []
    _group_name(fields["name"], names, problems)
    if not names or "hosts" not in fields:
        if names:
            problems.add(yn.line(node), f"group section {names[0]!r} has no 'hosts:' list")
        return []
    return [(names[0], fields["hosts"])]


def _hosts(
    node: yn.Node, groups: tuple[str, ...], entries: list[tuple[int, HostSpec]], problems: Problems
) -> None:
    if isinstance(node, yn.ScalarNode) and node.tag.endswith(":null"):
        return
    if not isinstance(node, yn.SequenceNode):
        problems.add(yn.line(node), "'hosts' must be a list of hosts (- name: ..., address: ...)")
        return
    for item in node.value:
        spec = _host(item, groups, problems)
        if spec is not None:
            entries.append((yn.line(item), spec))


def _host(node: yn.Node, groups: tuple[str, ...], problems: Problems) -> HostSpec | None:
    if not isinstance(node, yn.MappingNode):
        problems.add(yn.line(node), "a host must be a mapping with at least name and address")
        return None
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key, value_node in yn.items(node, problems):
        if key not in HOST_KEYS:
            problems.add(yn.line(value_node), f"unknown host key {key!r} (expected {', '.join(HOST_KEYS)})")
            continue
        raw[key] = yn.value(value_node, problems)
        lines[key] = yn.line(value_node)
    spec, bad = make_spec(raw, extra_groups=groups)
    who = f"host {raw['name']!r}: " if isinstance(raw.get("name"), str) else ""
    for fld, message in bad:
        problems.add(lines.get(fld, yn.line(node)), who + message if fld != "name" else message)
    return spec
