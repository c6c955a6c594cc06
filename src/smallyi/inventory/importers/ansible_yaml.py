"""Ansible YAML inventories: groups (``all`` at the top, usually) with ``hosts``, ``vars``, ``children``::

    all:
      vars: {ansible_user: deploy}
      children:
        web:
          hosts:
            web-1: {ansible_host: 10.0.0.11}
            web-2:
"""

from __future__ import annotations

from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.importers import yaml_nodes as yn
from smallyi.inventory.importers.ansible_ini import expand
from smallyi.inventory.importers.ansible_tree import Inventory
from smallyi.inventory.importers.fields import Problems, check_group_name

GROUP_KEYS = ("hosts", "vars", "children")


def parse(text: str, source: str = "inventory.yml") -> list[HostSpec]:
    problems = Problems(source)
    inv = Inventory(problems)
    root = yn.compose(text, problems)
    if isinstance(root, yn.MappingNode):
        for name, node in yn.items(root, problems):
            _group(name, node, None, inv, problems)
    elif root is not None:
        problems.add(yn.line(root), "expected groups at the top (all: hosts/vars/children)")
    return inv.hosts()


def _is_null(node: yn.Node) -> bool:
    return isinstance(node, yn.ScalarNode) and node.tag.endswith(":null")


def _group(name: str, node: yn.Node, parent: str | None, inv: Inventory, problems: Problems) -> None:
    problem = check_group_name(name)
    if problem:
        problems.add(yn.line(node), problem)
        return
    if parent is None:
        inv.group(name, yn.line(node))
    else:
        inv.child(parent, name, yn.line(node))
    if _is_null(node):
        return
    if not isinstance(node, yn.MappingNode):
        problems.add(yn.line(node), f"group {name!r} must be a mapping of {', '.join(GROUP_KEYS)}")
        return
    for key, value in yn.items(node, problems):
        if _is_null(value):
            continue
        if key not in GROUP_KEYS:
            expected = ", ".join(GROUP_KEYS)
            problems.add(yn.line(value), f"group {name!r}: unknown key {key!r} (expected {expected})")
        elif not isinstance(value, yn.MappingNode):
            problems.add(yn.line(value), f"group {name!r}: {key!r} must be a mapping")
        elif key == "vars":
            for var, var_node in yn.items(value, problems):
                inv.group_vars(name, var, yn.value(var_node, problems), yn.line(var_node))
        elif key == "children":
            for child, child_node in yn.items(value, problems):
                _group(child, child_node, name, inv, problems)
        else:
            for pattern, host_node in yn.items(value, problems):
                _host(name, pattern, host_node, inv, problems)


def _host(group: str, pattern: str, node: yn.Node, inv: Inventory, problems: Problems) -> None:
    number = yn.line(node)
    hostvars: dict[str, object] = {}
    if not _is_null(node):
        if not isinstance(node, yn.MappingNode):
            problems.add(number, f"host {pattern!r}: its variables must be a mapping (or nothing)")
            return
        hostvars = {k: yn.value(v, problems) for k, v in yn.items(node, problems)}
    for name in expand(pattern, number, problems):
        inv.host(group, name, hostvars, number)
