"""OpenSSH client configuration (``~/.ssh/config``): every concrete ``Host`` alias becomes a host.

Values are looked up the way ``ssh`` does: blocks are read top to bottom and the first value found
for a keyword wins, so a ``Host *`` block at the end gives defaults (``HostName``, ``Port``, ``User``).
Patterns with ``*``, ``?`` or ``!`` only supply values. ``Match`` blocks and ``Include`` are skipped:
what they apply depends on the machine running ``ssh``.

``IdentityFile``, ``UserKnownHostsFile``, ``StrictHostKeyChecking`` and ``ConnectTimeout`` become the
host's own SSH settings (the first ``IdentityFile`` only: small-yi tries one key per host). Every other
keyword (``ProxyJump``, ``IdentitiesOnly``...) is not imported.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field

from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.importers.fields import Problems, check_host_name, make_spec

_WILDCARD = re.compile(r"[*?!]")
WANTED = {"hostname": "address", "port": "port", "user": "user"}
#: keyword → the host's SSH setting it gives
SSH_WANTED = {"identityfile": "private_key", "userknownhostsfile": "known_hosts",
              "stricthostkeychecking": "host_key_policy", "connecttimeout": "connect_timeout"}
#: StrictHostKeyChecking → host key policy (``ask`` cannot ask anyone here: it refuses unknown keys)
_POLICIES = {"yes": "strict", "ask": "strict", "accept-new": "accept-new", "no": "off", "off": "off"}
_TOKEN = re.compile(r"%(.)")


@dataclass
class _Block:
    patterns: list[str]
    line: int
    #: keyword → (value, line), first occurrence only
    values: dict[str, tuple[str, int]] = field(default_factory=dict)

    def matches(self, alias: str) -> bool:
        hit = False
        for p in self.patterns:
            if p.startswith("!"):
                if fnmatch.fnmatchcase(alias, p[1:]):
                    return False
            elif fnmatch.fnmatchcase(alias, p):
                hit = True
        return hit


def parse(text: str, source: str = "ssh_config") -> list[HostSpec]:
    problems = Problems(source)
    blocks: list[_Block] = [_Block(["*"], 0)]
    aliases: list[tuple[str, int]] = []
    current: _Block | None = blocks[0]
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z]+)(?:\s*=\s*|\s+|$)(.*)$", line)
        if not m:
            problems.add(number, f"cannot read {line!r}: expected 'Keyword value'")
            continue
        keyword, rest = m.group(1).lower(), m.group(2).strip()
        try:
            args = shlex.split(rest, comments=True)
        except ValueError as exc:
            problems.add(number, f"cannot read {line!r}: {exc}")
            continue
        if not args:
            problems.add(number, f"{m.group(1)} has no value")
            continue
        if keyword == "host":
            current = _Block(args, number)
            blocks.append(current)
            aliases.extend((a, number) for a in args if not _WILDCARD.search(a))
        elif keyword == "match":
            current = None
        elif current is not None and (keyword in WANTED or keyword in SSH_WANTED):
            current.values.setdefault(keyword, (args[0], number))
    entries: list[tuple[int, HostSpec]] = []
    seen: set[str] = set()
    for alias, number in aliases:
        if alias in seen:  # ssh merges repeated aliases; so do we
            continue
        seen.add(alias)
        spec = _host(alias, number, blocks, problems)
        if spec is not None:
            entries.append((number, spec))
    problems.raise_if_any()
    return [spec for _, spec in entries]


def _host(alias: str, number: int, blocks: list[_Block], problems: Problems) -> HostSpec | None:
    bad_name = check_host_name(alias)
    if bad_name:
        problems.add(number, bad_name)
        return None
    found: dict[str, tuple[str, int]] = {}
    for block in blocks:
        if block.matches(alias):
            for keyword, found_at in block.values.items():
                found.setdefault(keyword, found_at)
    raw: dict[str, object] = {"name": alias, "address": alias}
    lines: dict[str, int] = {}
    for keyword, fld in WANTED.items():
        if keyword in found:
            value, lines[fld] = found[keyword]
            raw[fld] = value.replace("%h", alias).replace("%%", "%") if fld == "address" else value
    ssh: dict[str, object] = {}
    for keyword, setting in SSH_WANTED.items():
        if keyword in found:
            value, lines["ssh"] = found[keyword]
            converted = _ssh_value(setting, value)
            if converted is None:
                problems.add(lines["ssh"], f"host {alias!r}: {keyword} {value!r} cannot be imported "
                             f"({_ssh_hint(setting)})")
                return None
            ssh[setting] = converted
    raw["ssh"] = ssh
    spec, bad = make_spec(raw)
    for fld, message in bad:
        problems.add(lines.get(fld, number), f"host {alias!r}: {message}")
    return spec


def _ssh_value(setting: str, value: str) -> str | None:
    """The host setting an ssh_config value gives, or None when it has no equivalent."""
    if setting == "host_key_policy":
        return _POLICIES.get(value.lower())
    if setting == "connect_timeout":
        return value if value.isdigit() and int(value) > 0 else None
    if any(m.group(1) not in "d%" for m in _TOKEN.finditer(value)):  # %h, %r...: differ per connection
        return None
    return value.replace("%d", "~").replace("%%", "%")


def _ssh_hint(setting: str) -> str:
    if setting == "host_key_policy":
        return "small-yi knows yes, ask, accept-new and no"
    if setting == "connect_timeout":
        return "a whole number of seconds"
    return "only the %d and %% tokens are understood"
