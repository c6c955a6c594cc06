"""Ansible INI inventories: ``[group]`` host lines, ``[group:children]``, ``[group:vars]``.

A host line is ``NAME[:PORT] [key=value ...]``; ``web[01:03]`` and ``db-[a:c]`` expand to ranges.
``ansible_host``/``ansible_port``/``ansible_user`` (and their ``ansible_ssh_`` forms) give the address,
port and user; other plain variables become labels (see ``ansible_tree``).
"""

from __future__ import annotations

import re
import shlex

from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.importers.ansible_tree import Inventory
from smallyi.inventory.importers.fields import Problems, check_group_name

_SECTION = re.compile(r"^\[([^\[\]:\s]+)(?::(vars|children))?\]$")
_RANGE = re.compile(r"\[([^\[\]]*)\]")
_NUMERIC = re.compile(r"^(\d+):(\d+)(?::(\d+))?$")
_ALPHA = re.compile(r"^([a-z]):([a-z])(?::(\d+))?$|^([A-Z]):([A-Z])(?::(\d+))?$")
MAX_RANGE = 100_000


def parse(text: str, source: str = "inventory.ini") -> list[HostSpec]:
    problems = Problems(source)
    inv = Inventory(problems)
    group, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = _SECTION.match(line)
            if not m:
                problems.add(number, f"cannot read section header {line!r}: expected [group], "
                             "[group:vars] or [group:children]")
                group, kind = "", "skip"
                continue
            group, kind = m.group(1), m.group(2) or "hosts"
            problem = check_group_name(group)
            if problem:
                problems.add(number, problem)
                kind = "skip"
            else:
                inv.group(group, number)
            continue
        if kind == "skip":
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            problems.add(number, f"cannot read line {line!r}: {exc}")
            continue
        if not words:
            continue
        if kind == "children":
            if len(words) != 1:
                problems.add(number, f"[{group}:children] lists one group name per line, found {line!r}")
                continue
            problem = check_group_name(words[0])
            if problem:
                problems.add(number, problem)
            else:
                inv.child(group, words[0], number)
        elif kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                problems.add(number, f"[{group}:vars] lines are key=value, found {line!r}")
                continue
            inv.group_vars(group, key.strip(), _unquote(value.strip()), number)
        else:
            _host_line(words, group, number, inv, problems)
    return inv.hosts()


def _host_line(words: list[str], group: str, number: int, inv: Inventory, problems: Problems) -> None:
    pattern, *assignments = words
    hostvars: dict[str, object] = {}
    for word in assignments:
        key, sep, value = word.partition("=")
        if not sep or not key:
            problems.add(number, f"host variable {word!r} is not key=value")
            return
        hostvars[key] = value
    if _RANGE.sub("", pattern).count(":") == 1:
        pattern, _, port = pattern.rpartition(":")
        hostvars.setdefault("ansible_port", port)
    names = expand(pattern, number, problems)
    for name in names:
        inv.host(group, name, hostvars, number)


def expand(pattern: str, number: int, problems: Problems) -> list[str]:
    """``web[01:03]`` → web01, web02, web03; ``db-[a:c]`` → db-a, db-b, db-c (Ansible's ranges)."""
    m = _RANGE.search(pattern)
    if not m:
        return [pattern]
    head, tail = pattern[: m.start()], pattern[m.end():]
    spec = m.group(1)
    values: list[str]
    num = _NUMERIC.match(spec)
    alpha = _ALPHA.match(spec)
    if num:
        lo, hi, step = num.group(1), num.group(2), int(num.group(3) or 1)
        width = len(lo) if lo.startswith("0") and len(lo) > 1 else 0
        if int(lo) > int(hi) or step < 1 or (int(hi) - int(lo)) // step >= MAX_RANGE:
            problems.add(number, f"host range [{spec}] is empty or too large")
            return []
        values = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1, step)]
    elif alpha:
        lo, hi = alpha.group(1) or alpha.group(4), alpha.group(2) or alpha.group(5)
        step = int(alpha.group(3) or alpha.group(6) or 1)
        if lo > hi or step < 1:
            problems.add(number, f"host range [{spec}] is empty")
            return []
        values = [chr(c) for c in range(ord(lo), ord(hi) + 1, step)]
    else:
        problems.add(number, f"host range [{spec}] is not [START:END] or [START:END:STEP]")
        return []
    rest = expand(tail, number, problems)
    return [head + v + r for v in values for r in rest]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
