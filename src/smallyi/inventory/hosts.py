"""The value a host is, independent of where it is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smallyi.errors import InputError

#: host and group names: letters, digits and ``._-``, starting with a letter or digit (never a shell
#: metacharacter, and safe as a ``[name]`` output prefix)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")


@dataclass(frozen=True, slots=True)
class HostSpec:
    name: str
    address: str
    port: int = 22
    #: login user; empty means the config's ``ssh.user``
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    description: str = ""
    enabled: bool = True
    #: "ssh", or "local" for the server itself
    connector: str = "ssh"

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def permission_groups(self) -> tuple[str, ...]:
        """The groups a permission on this host must be granted on.

        The server itself (connector ``local``) counts as in group ``local`` only: running there is
        running as the server's user, so adding it to another group must not hand that group's
        operators the server.
        """
        return ("local",) if self.connector == "local" else self.groups


def check_name(value: str, what: str = "host name") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InputError(
            f"{what} {value!r} is not valid: use letters, digits, '.', '_' and '-', starting with a letter or digit",
            field="name",
        )
    return value


def parse_label(text: str) -> tuple[str, str]:
    """``"env=prod"`` → ("env", "prod"); InputError naming the label otherwise."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not LABEL_KEY_RE.match(key):
        raise InputError(f"label {text!r} is not key=value (key: letters, digits, '._/-')", field="labels")
    return key, value.strip()
