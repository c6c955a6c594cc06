"""The value a host is, independent of where it is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smallyi.errors import InputError

#: host and group names: letters, digits and ``._-``, starting with a letter or digit (never a shell
#: metacharacter, and safe as a ``[name]`` output prefix)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
#: the config's ``ssh`` settings a host may override, in the order they are shown
SSH_OVERRIDES = ("private_key", "private_key_secret", "known_hosts", "host_key_policy", "connect_timeout")
#: strictest first
HOST_KEY_POLICIES = ("strict", "accept-new", "off")
#: the host (and group) the server registers for itself (``InventoryService.ensure_local_host``)
LOCAL_NAME = "local"


@dataclass(frozen=True, slots=True)
class SSHOverrides:
    """One host's own SSH settings; each None means the config's ``ssh.<same name>``.

    ``private_key`` (a key file on the server) and ``private_key_secret`` (a stored secret's name)
    replace the config's key and each other: a host naming one uses neither of the config's.
    """

    private_key: str | None = None
    private_key_secret: str | None = None
    known_hosts: str | None = None
    host_key_policy: str | None = None
    #: seconds
    connect_timeout: float | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, k) is not None for k in SSH_OVERRIDES)

    @property
    def trust(self) -> SSHOverrides:
        """The part that decides which key and host keys a connection uses (what pools apart)."""
        return SSHOverrides(self.private_key, self.private_key_secret, self.known_hosts, self.host_key_policy)

    @property
    def sets_key(self) -> bool:
        return self.private_key is not None or self.private_key_secret is not None

    def to_dict(self) -> dict[str, str | float]:
        """Only the settings this host overrides."""
        return {k: v for k in SSH_OVERRIDES if (v := getattr(self, k)) is not None}


NO_OVERRIDES = SSHOverrides()


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
    #: this host's own SSH settings (key, known_hosts, host key policy, connect timeout)
    ssh: SSHOverrides = NO_OVERRIDES

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
