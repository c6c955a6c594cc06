"""Hosts, groups and target previews: bulk register, file import, edit, and the live target count."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import Paging, State, User, listing
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import Page
from smallyi.api.schemas.hosts import GroupOut, HostOut, ImportOut, ImportReportOut, MembersOut
from smallyi.api.targets import TargetIn
from smallyi.auth.service import Principal
from smallyi.errors import Forbidden, InputError
from smallyi.inventory.hosts import NO_OVERRIDES, HostSpec, SSHOverrides, parse_label
from smallyi.inventory.importers import parse_inventory
from smallyi.inventory.importers.fields import parse_ssh
from smallyi.inventory.service import host_dict

router = APIRouter(tags=["hosts"])

#: the largest inventory file ``POST /hosts/import`` reads
MAX_IMPORT_BYTES = 16 * 1024 * 1024


class SSHIn(BaseModel):
    """A host's own SSH settings; each one left out is the config's ``ssh.<same name>``."""

    model_config = ConfigDict(extra="forbid")
    private_key: str | None = Field(default=None, description="a key file on the server (absolute or ~/)")
    private_key_secret: str | None = Field(default=None, description="a stored secret holding the key")
    known_hosts: str | None = Field(default=None, description="a known_hosts file on the server")
    host_key_policy: str | None = Field(default=None, description="strict, accept-new or off")
    connect_timeout: str | float | None = Field(default=None, description="a Go duration (5s) or seconds")

    def overrides(self) -> SSHOverrides:
        value, problems = parse_ssh(self.model_dump(exclude_none=True))
        if problems:
            raise InputError(problems[0], field="ssh")
        return value


class HostIn(BaseModel):
    """One host to register; names, addresses and labels are checked by the inventory."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=255)
    address: str = Field(max_length=255)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(default="", max_length=128)
    labels: dict[str, str] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)
    description: str = ""
    enabled: bool = True
    ssh: SSHIn | None = None

    def spec(self) -> HostSpec:
        return HostSpec(
            name=self.name, address=self.address, port=self.port, user=self.user, labels=dict(self.labels),
            groups=tuple(self.groups), description=self.description, enabled=self.enabled,
            ssh=self.ssh.overrides() if self.ssh is not None else NO_OVERRIDES,
        )


class HostPatch(BaseModel):
    """The fields to change; ``groups`` and ``labels`` replace the host's whole set."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=255)
    address: str | None = Field(default=None, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = Field(default=None, max_length=128)
    labels: dict[str, str] | None = None
    groups: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None
    #: replaces the host's whole set of SSH settings ({} goes back to the config's)
    ssh: SSHIn | None = None


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""


class GroupPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = None


class MembersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


def check_trust(user: Principal, specs: list[HostSpec]) -> None:
    """A host's key, or turning its host-key checking off, is a secrets matter: it needs secrets.write.

    hosts.write alone could otherwise point a stored key (or any key file the server can read) at an
    address of its choosing, or drop host-key checks for one host.
    """
    risky = [s.name for s in specs if s.ssh.sets_key or s.ssh.host_key_policy == "off"]
    if risky and not user.access.allows(Perm.SECRETS_WRITE):
        shown = ", ".join(risky[:5]) + (f" and {len(risky) - 5} more" if len(risky) > 5 else "")
        raise Forbidden(
            f"setting a host's ssh.private_key, ssh.private_key_secret or ssh.host_key_policy: off needs "
            f"permission secrets.write, which user {user.username!r} (role {user.role}) lacks (hosts: {shown})"
        )


def _labels(values: list[str]) -> dict[str, str]:
    return dict(parse_label(v) for v in values)


GroupsQuery = Annotated[list[str], Query(alias="group", description="also put every host in this group")]


# -- hosts ---------------------------------------------------------------------------------------
# (response_model_exclude_unset on the routes answering hosts: ``ssh`` holds only what a host overrides)


@router.get("/hosts", response_model=Page[HostOut], response_model_exclude_unset=True,
            dependencies=[needs(Perm.HOSTS_READ)])
async def list_hosts(
    state: State,
    user: User,
    paging: Paging,
    group: str | None = None,
    label: Annotated[list[str], Query(description="k=v; repeat for several (all must match)")] = [],  # noqa: B006
    search: str | None = None,
    status: Annotated[str | None, Query(description="latest finished result: success, failed, timeout, "
                                        "unreachable, cancelled, interrupted, or never")] = None,
) -> dict[str, Any]:
    """Hosts by name, filtered by group, labels, a search in name, address and description, and the
    status of each host's latest finished result."""
    hosts, total = await state.inventory.list_hosts(
        group=group, labels=_labels(label), search=search, status=status or None,
        limit=paging.limit, offset=paging.offset,
    )
    return listing([host_dict(h) for h in hosts], total)


@router.post("/hosts", response_model=ImportReportOut, dependencies=[needs(Perm.HOSTS_WRITE)])
async def upsert_hosts(body: list[HostIn], state: State, user: User, group: GroupsQuery = []) -> dict[str, Any]:  # noqa: B006
    """Register or replace hosts by name, all or nothing; answers what was created, updated, unchanged."""
    specs = [h.spec() for h in body]
    check_trust(user, specs)
    report = await state.inventory.upsert(specs, source="manual", default_groups=group)
    return report.to_dict()


@router.post("/hosts/import", response_model=ImportOut, dependencies=[needs(Perm.HOSTS_WRITE)])
async def import_hosts(
    request: Request,
    state: State,
    user: User,
    format: Annotated[str | None, Query(description="yaml|csv|ini|ansible-yaml|ssh_config")] = None,
    filename: Annotated[str | None, Query(description="the file's name, to guess the format from")] = None,
    group: GroupsQuery = [],  # noqa: B006
    dry_run: bool = False,
) -> dict[str, Any]:
    """Import an inventory file sent as the request body; every bad line is reported, nothing half-saved."""
    if not format and not filename:
        raise InputError("give ?format=yaml|csv|ini|ansible-yaml|ssh_config (or ?filename=...)", field="format")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_IMPORT_BYTES:
            raise InputError(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB", field="body")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the file is not UTF-8 text", field="body") from None
    specs = parse_inventory(text, format=format, source=filename or "upload")
    check_trust(user, specs)
    report = await state.inventory.upsert(specs, source="import", default_groups=group, dry_run=dry_run)
    return {**report.to_dict(), "dry_run": dry_run}


@router.get("/hosts/{name}", response_model=HostOut, response_model_exclude_unset=True,
            dependencies=[needs(Perm.HOSTS_READ)])
async def get_host(name: str, state: State, user: User) -> dict[str, Any]:
    return host_dict(await state.inventory.get_host(name))


@router.patch("/hosts/{name}", response_model=HostOut, response_model_exclude_unset=True,
              dependencies=[needs(Perm.HOSTS_WRITE)])
async def update_host(name: str, body: HostPatch, state: State, user: User) -> dict[str, Any]:
    """Change some fields of a host; unset fields keep their value (``ssh`` replaces the host's set)."""
    fields = body.model_dump(exclude_unset=True)
    if "ssh" in fields:
        fields["ssh"] = body.ssh.overrides() if body.ssh is not None else NO_OVERRIDES
        check_trust(user, [HostSpec(name=name, address="", ssh=fields["ssh"])])
    return host_dict(await state.inventory.update_host(name, **fields))


@router.delete("/hosts/{name}", status_code=204, dependencies=[needs(Perm.HOSTS_WRITE)])
async def delete_host(name: str, state: State, user: User) -> Response:
    await state.inventory.delete_host(name)
    return Response(status_code=204)


# -- groups --------------------------------------------------------------------------------------


@router.get("/groups", response_model=Page[GroupOut], dependencies=[needs(Perm.HOSTS_READ)])
async def list_groups(state: State, user: User, page: Paging) -> dict[str, Any]:
    """Groups by name with their host counts, a page at a time (``limit`` up to 1000, ``offset``)."""
    groups = [g.to_dict() for g in await state.inventory.list_groups()]
    return listing(groups[page.offset:page.offset + page.limit], len(groups))


@router.post("/groups", status_code=201, response_model=GroupOut, dependencies=[needs(Perm.HOSTS_WRITE)])
async def create_group(body: GroupIn, state: State, user: User) -> dict[str, Any]:
    return (await state.inventory.create_group(body.name, body.description)).to_dict()


@router.patch("/groups/{name}", response_model=GroupOut, dependencies=[needs(Perm.HOSTS_WRITE)])
async def update_group(name: str, body: GroupPatch, state: State, user: User) -> dict[str, Any]:
    """Rename a group (``name``) and/or change its description; its hosts stay in it."""
    info = await state.inventory.update_group(name, new_name=body.name, description=body.description)
    return info.to_dict()


@router.delete("/groups/{name}", status_code=204, dependencies=[needs(Perm.HOSTS_WRITE)])
async def delete_group(name: str, state: State, user: User) -> Response:
    """Delete a group; its hosts stay in the inventory."""
    await state.inventory.delete_group(name)
    return Response(status_code=204)


@router.post("/groups/{name}/members", response_model=MembersOut, dependencies=[needs(Perm.HOSTS_WRITE)])
async def set_members(name: str, body: MembersIn, state: State, user: User) -> dict[str, Any]:
    """Add and remove hosts, all or nothing; answers the group's members afterwards."""
    members = await state.inventory.set_members(name, add=body.add, remove=body.remove)
    return {"group": name, "members": members, "total": len(members)}


# -- targets -------------------------------------------------------------------------------------


@router.post("/targets/resolve", response_model=Page[HostOut], response_model_exclude_unset=True,
             dependencies=[needs(Perm.HOSTS_READ)])
async def resolve_target(body: TargetIn, state: State, user: User) -> dict[str, Any]:
    """The enabled hosts a task with this target would run on (an empty list when none match)."""
    hosts = await state.inventory.resolve(body.selector(), allow_empty=True)
    return listing([host_dict(h) for h in hosts], len(hosts))
