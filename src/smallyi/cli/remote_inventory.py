"""The inventory of a running server, over its API, with the methods of ``InventoryService`` the CLI uses.

So ``small-yi hosts ... --server URL --token T`` runs the same command code as in-process: only the
backend differs. Answers come back as the same values (``HostSpec``, ``ImportReport``, ``GroupInfo``);
errors as the same small-yi errors (``cli.client.Client`` maps the API's error shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from smallyi.cli.client import Client
from smallyi.inventory.hosts import HostSpec, SSHOverrides
from smallyi.inventory.service import GroupInfo, ImportReport

#: the API's largest page
_PAGE = 1000


def _spec(d: dict[str, Any]) -> HostSpec:
    return HostSpec(name=d["name"], address=d["address"], port=d["port"], user=d["user"], labels=d["labels"],
                    groups=tuple(d["groups"]), description=d["description"], enabled=d["enabled"],
                    connector=d.get("connector", "ssh"), ssh=SSHOverrides(**d.get("ssh", {})))


def _report(d: dict[str, Any]) -> ImportReport:
    return ImportReport(created=d["created"], updated=d["updated"], unchanged=d["unchanged"])


def _group(d: dict[str, Any]) -> GroupInfo:
    return GroupInfo(name=d["name"], description=d["description"], host_count=d["host_count"])


def _name(name: str) -> str:
    return quote(name, safe="")


class RemoteInventory:
    def __init__(self, client: Client) -> None:
        self.c = client

    async def list_hosts(self, *, group: str | None = None, labels: dict[str, str] | None = None,
                         search: str | None = None) -> tuple[list[HostSpec], int]:
        params: list[tuple[str, str | int]] = [("label", f"{k}={v}") for k, v in (labels or {}).items()]
        params += [(k, v) for k, v in (("group", group), ("search", search)) if v]
        hosts: list[HostSpec] = []
        while True:
            page = await self.c.call("GET", "/api/v1/hosts",
                                     params=[*params, ("limit", _PAGE), ("offset", len(hosts))])
            hosts += [_spec(h) for h in page["items"]]
            if not page["items"] or len(hosts) >= page["total"]:
                return hosts, int(page["total"])

    async def get_host(self, name: str) -> HostSpec:
        return _spec(await self.c.call("GET", f"/api/v1/hosts/{_name(name)}"))

    async def upsert(self, specs: list[HostSpec], *, source: str, default_groups: Sequence[str] = (),
                     dry_run: bool = False) -> ImportReport:
        if dry_run:  # only `hosts import` has one, and it sends the file (import_text)
            raise AssertionError("a remote dry run goes through import_text")
        body = [{"name": s.name, "address": s.address, "port": s.port, "user": s.user, "labels": s.labels,
                 "groups": list(s.groups), "description": s.description, "enabled": s.enabled,
                 "ssh": s.ssh.to_dict()} for s in specs]
        return _report(await self.c.call("POST", "/api/v1/hosts", json=body,
                                         params=[("group", g) for g in default_groups]))

    async def import_text(self, text: str, *, format: str | None, filename: str, default_groups: Sequence[str],
                          dry_run: bool) -> ImportReport:
        """Send the file as it is: the server parses it as the console's import does."""
        params: list[tuple[str, str]] = [("filename", filename), ("dry_run", str(dry_run).lower())]
        params += [("format", format)] if format else []
        params += [("group", g) for g in default_groups]
        return _report(await self.c.call("POST", "/api/v1/hosts/import", content=text.encode(), params=params))

    async def update_host(self, name: str, /, **fields: Any) -> HostSpec:
        if isinstance(fields.get("ssh"), SSHOverrides):
            fields["ssh"] = fields["ssh"].to_dict()
        return _spec(await self.c.call("PATCH", f"/api/v1/hosts/{_name(name)}", json=fields))

    async def delete_host(self, name: str) -> None:
        await self.c.call("DELETE", f"/api/v1/hosts/{_name(name)}")

    async def list_groups(self) -> list[GroupInfo]:
        groups: list[GroupInfo] = []
        while True:
            page = await self.c.call("GET", "/api/v1/groups", params={"limit": _PAGE, "offset": len(groups)})
            groups += [_group(g) for g in page["items"]]
            if not page["items"] or len(groups) >= page["total"]:
                return groups

    async def create_group(self, name: str, description: str = "") -> GroupInfo:
        return _group(await self.c.call("POST", "/api/v1/groups", json={"name": name, "description": description}))

    async def rename_group(self, name: str, new_name: str) -> GroupInfo:
        return _group(await self.c.call("PATCH", f"/api/v1/groups/{_name(name)}", json={"name": new_name}))

    async def delete_group(self, name: str) -> None:
        await self.c.call("DELETE", f"/api/v1/groups/{_name(name)}")

    async def set_members(self, group: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> list[str]:
        answer = await self.c.call("POST", f"/api/v1/groups/{_name(group)}/members",
                                   json={"add": list(add), "remove": list(remove)})
        return list(answer["members"])
