"""Field checks shared by every importer and the service: raw values in, a HostSpec or problems out.

Importers collect problems with their line numbers instead of stopping at the first, so that one run
shows the user every line to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smallyi.durations import parse_duration
from smallyi.errors import ImportFileError, InputError
from smallyi.inventory.hosts import (
    HOST_KEY_POLICIES,
    LABEL_KEY_RE,
    NAME_RE,
    NO_OVERRIDES,
    SSH_OVERRIDES,
    HostSpec,
    SSHOverrides,
)

#: host name, IPv4/IPv6 literal (``%zone`` allowed); never whitespace or a shell metacharacter
ADDRESS_RE = re.compile(r"^[A-Za-z0-9:][A-Za-z0-9._:%-]{0,254}$")
USER_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._@-]{0,127}$")
MAX_LABEL_VALUE = 255
MAX_DESCRIPTION = 4000
#: a stored secret's name (as the secret store takes it)
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_PATH = 1024
#: the longest connect timeout a host may ask for
MAX_CONNECT_TIMEOUT = 3600.0
#: separators accepted between groups or labels written on one line (CSV cells, CLI)
LIST_SEP = re.compile(r"[;|]")

_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


@dataclass
class Problems:
    """Problems found in one file, each tied to a line (0: the file as a whole)."""

    source: str
    items: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if self.items:
            ordered = sorted(self.items, key=lambda p: p[0])
            raise ImportFileError(self.source, [f"line {n}: {m}" if n else m for n, m in ordered])


# -- single values: each returns (value, problem or None) ---------------------------------------------


def check_host_name(value: Any) -> str | None:
    return _check_name("host", value)


def check_group_name(value: Any) -> str | None:
    return _check_name("group", value)


def _check_name(what: str, value: Any) -> str | None:
    if not isinstance(value, str) or not NAME_RE.match(value):
        return (f"{what} name {value!r} is not valid: use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit")
    return None


def check_address(value: Any) -> str | None:
    if value is None or value == "":
        return "address is missing"
    if not isinstance(value, str) or not ADDRESS_RE.match(value):
        return f"address {value!r} is not a host name or IP address"
    return None


def parse_port(value: Any) -> tuple[int, str | None]:
    """22 from ``22`` or ``"22"``; a problem for anything outside 1-65535."""
    if isinstance(value, bool):
        return 0, f"port {value!r} is not a number"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        return 0, f"port {value!r} is not a number"
    if not 1 <= value <= 65535:
        return 0, f"port {value} is out of range (1-65535)"
    return value, None


def check_user(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"user {value!r} is not a login name"
    if value and not USER_RE.match(value):
        return f"user {value!r} is not a valid login name"
    return None


def parse_bool(value: Any, what: str) -> tuple[bool, str | None]:
    if isinstance(value, bool):
        return value, None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True, None
    if text in _FALSE:
        return False, None
    return True, f"{what} {value!r} is not true or false"


def scalar_text(value: Any) -> str | None:
    """A YAML/INI scalar as label text (``True`` → "true"); None for lists, mappings and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def parse_labels(value: Any) -> tuple[dict[str, str], list[str]]:
    """Labels from a mapping, a list of ``k=v``, or ``"k=v;k2=v2"``; problems name each bad label."""
    out: dict[str, str] = {}
    problems: list[str] = []
    pairs: list[tuple[Any, Any]] = []
    if value is None or value == "":
        return out, problems
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, str | list | tuple):
        items: list[Any] = LIST_SEP.split(value) if isinstance(value, str) else list(value)
        for item in items:
            if isinstance(item, str) and not item.strip():
                continue
            key, sep, val = str(item).partition("=")
            if not isinstance(item, str) or not sep:
                problems.append(f"label {item!r} is not key=value")
                continue
            pairs.append((key.strip(), val.strip()))
    else:
        return out, [f"labels {value!r} are not a mapping or a list of key=value"]
    for key, val in pairs:
        if not isinstance(key, str) or not LABEL_KEY_RE.match(key):
            problems.append(f"label key {key!r} is not valid: use letters, digits and '._/-'")
            continue
        text = scalar_text(val) if val is not None else ""
        if text is None:
            problems.append(f"label {key!r} has a value that is not text: {val!r}")
        elif len(text) > MAX_LABEL_VALUE or any(c in text for c in "\r\n\0"):
            problems.append(f"label {key!r}: the value must be one line of at most {MAX_LABEL_VALUE} chars")
        else:
            out[key] = text
    return out, problems


def parse_groups(value: Any) -> tuple[tuple[str, ...], list[str]]:
    """Group names from a list or ``"a;b"`` / ``"a|b"``, deduplicated in order."""
    if value is None or value == "":
        return (), []
    items: Iterable[Any]
    if isinstance(value, str):
        items = (g.strip() for g in LIST_SEP.split(value))
    elif isinstance(value, list | tuple):
        items = value
    else:
        items = [value]
    out: list[str] = []
    problems: list[str] = []
    for g in items:
        if g == "":
            continue
        problem = check_group_name(g)
        if problem:
            problems.append(problem)
        elif g not in out:
            out.append(g)
    return tuple(out), problems


def _server_path(value: Any, what: str) -> tuple[str | None, str | None]:
    """A file on the server: absolute or ``~/...`` (a relative one would depend on the server's folder)."""
    if not isinstance(value, str) or not value.strip():
        return None, f"{what} must be a file path on the server"
    text = value.strip()
    if len(text) > MAX_PATH or any(c in text for c in "\r\n\0"):
        return None, f"{what} must be one line of at most {MAX_PATH} characters"
    if not (text.startswith("/") or text == "~" or text.startswith("~/")):
        return None, f"{what} {text!r} must be an absolute path (or start with ~/): it is read on the server"
    return text, None


def parse_ssh(value: Any) -> tuple[SSHOverrides, list[str]]:
    """A host's SSH overrides from a mapping of the config's ``ssh`` setting names (``ssh.<name>``)."""
    if value is None or value == {}:
        return NO_OVERRIDES, []
    if not isinstance(value, Mapping):
        return NO_OVERRIDES, [f"ssh must be a mapping of {', '.join(SSH_OVERRIDES)}, not {value!r}"]
    problems: list[str] = []
    unknown = sorted(str(k) for k in value if k not in SSH_OVERRIDES)
    if unknown:
        problems.append(f"unknown ssh setting(s) {', '.join(unknown)} (a host may set {', '.join(SSH_OVERRIDES)})")
    out: dict[str, Any] = {}
    for key in ("private_key", "known_hosts"):
        if value.get(key) is not None:
            out[key], problem = _server_path(value[key], f"ssh.{key}")
            if problem:
                problems.append(problem)
    secret = value.get("private_key_secret")
    if secret is not None:
        if isinstance(secret, str) and SECRET_NAME_RE.match(secret):
            out["private_key_secret"] = secret
        else:
            problems.append(f"ssh.private_key_secret {secret!r} is not a secret name (letters, digits, '._-')")
    if out.get("private_key") and out.get("private_key_secret"):
        problems.append("ssh.private_key and ssh.private_key_secret both name the key: give one")
    policy = value.get("host_key_policy")
    if policy is not None:
        if policy in HOST_KEY_POLICIES:
            out["host_key_policy"] = policy
        else:
            problems.append(f"ssh.host_key_policy {policy!r} is not one of {', '.join(HOST_KEY_POLICIES)}")
    timeout = value.get("connect_timeout")
    if timeout is not None:
        try:
            seconds = parse_duration(timeout, field="ssh.connect_timeout")
        except InputError as exc:
            problems.append(exc.message)
        else:
            if 0 < seconds <= MAX_CONNECT_TIMEOUT:
                out["connect_timeout"] = seconds
            else:
                problems.append(f"ssh.connect_timeout must be more than 0 and at most {MAX_CONNECT_TIMEOUT:g}s")
    return (NO_OVERRIDES, problems) if problems else (SSHOverrides(**out), [])


# -- a whole host -------------------------------------------------------------------------------------

#: the keys a host record may carry (our YAML, CSV columns, the API)
HOST_KEYS = ("name", "address", "port", "user", "labels", "groups", "description", "enabled", "ssh")


def make_spec(
    raw: Mapping[str, Any], *, extra_groups: Iterable[str] = (), connector: str = "ssh"
) -> tuple[HostSpec | None, list[tuple[str, str]]]:
    """A HostSpec from raw fields, or the (field, problem) pairs that prevent it."""
    problems: list[tuple[str, str]] = []

    def note(fld: str, problem: str | None) -> None:
        if problem:
            problems.append((fld, problem))

    name = raw.get("name")
    note("name", check_host_name(name))
    address = raw.get("address")
    if isinstance(address, int | float) and not isinstance(address, bool):
        address = str(address)
    note("address", check_address(address))
    port_raw = raw.get("port")
    port, p = parse_port(22 if port_raw is None or port_raw == "" else port_raw)
    note("port", p)
    user = raw.get("user")
    user = "" if user is None else user
    note("user", check_user(user))
    labels, lp = parse_labels(raw.get("labels"))
    problems += [("labels", m) for m in lp]
    groups, gp = parse_groups(raw.get("groups"))
    problems += [("groups", m) for m in gp]
    description = raw.get("description")
    description = "" if description is None else description
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        note("description", f"description must be text of at most {MAX_DESCRIPTION} characters")
    enabled_raw = raw.get("enabled")
    enabled, ep = (True, None) if enabled_raw is None else parse_bool(enabled_raw, "enabled")
    note("enabled", ep)
    ssh, sp = parse_ssh(raw.get("ssh"))
    problems += [("ssh", m) for m in sp]
    if problems:
        return None, problems
    all_groups = tuple(dict.fromkeys((*groups, *extra_groups)))
    spec = HostSpec(
        name=str(name), address=str(address), port=port, user=str(user), labels=labels,
        groups=all_groups, description=str(description), enabled=enabled, connector=connector, ssh=ssh,
    )
    return spec, []


def spec_problems(spec: HostSpec) -> list[tuple[str, str]]:
    """The (field, problem) pairs of a HostSpec built elsewhere (API, CLI), checked like a file's."""
    raw = {
        "name": spec.name, "address": spec.address, "port": spec.port, "user": spec.user,
        "labels": dict(spec.labels), "groups": list(spec.groups), "description": spec.description,
        "enabled": spec.enabled, "ssh": spec.ssh.to_dict(),
    }
    _, problems = make_spec(raw)
    if spec.connector not in ("ssh", "local"):
        problems.append(("connector", f"connector {spec.connector!r} is not 'ssh' or 'local'"))
    return problems


def check_duplicates(entries: Iterable[tuple[int, HostSpec]], problems: Problems) -> None:
    """One problem per repeated host name, pointing at the first line it was on."""
    first: dict[str, int] = {}
    for line, spec in entries:
        if spec.name in first:
            problems.add(line, f"host {spec.name!r} is listed twice (first on line {first[spec.name]})")
        else:
            first[spec.name] = line
