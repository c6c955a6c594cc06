"""What the hosts, groups and target routes answer (``host_dict``, ``ImportReport``, ``GroupInfo``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer


class SSHOut(Answer):
    """A host's own SSH settings: only those it overrides are answered (the rest are the config's)."""

    private_key: str | None = Field(default=None, description="a key file on the server")
    private_key_secret: str | None = Field(default=None, description="a stored secret holding the key")
    known_hosts: str | None = Field(default=None, description="a known_hosts file on the server")
    host_key_policy: Literal["strict", "accept-new", "off"] | None = None
    connect_timeout: float | None = Field(default=None, description="seconds")


class HostOut(Answer):
    name: str
    address: str
    port: int
    user: str = Field(description="the login user; empty: the config's ssh.user")
    labels: dict[str, str]
    groups: list[str] = Field(description="the host's groups, sorted")
    description: str
    enabled: bool
    connector: Literal["ssh", "local"] = Field(description="local: the small-yi server itself")
    ssh: SSHOut


class ImportCountsOut(Answer):
    created: int
    updated: int
    unchanged: int


class ImportReportOut(Answer):
    """What a bulk register did, by host name (each list sorted)."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]
    counts: ImportCountsOut


class ImportOut(ImportReportOut):
    dry_run: bool = Field(description="true: nothing was saved, the lists say what would be")


class GroupOut(Answer):
    name: str
    description: str
    host_count: int


class MembersOut(Answer):
    """A group's members after an edit."""

    group: str
    members: list[str]
    total: int
