"""The dashboard's numbers that no other endpoint gives: hosts counted by their latest result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import State, User
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas.overview import HostsOverviewOut, HostStatusOut
from smallyi.inventory.status import host_statuses, hosts_by_status

router = APIRouter(prefix="/overview", tags=["console"])


class NamesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hosts: list[str] = Field(max_length=5000)


@router.get("/hosts", response_model=HostsOverviewOut, dependencies=[needs(Perm.HOSTS_READ)])
async def hosts_overview(user: User, state: State) -> dict[str, Any]:
    """Enabled hosts by the status of their latest finished result (``never``: no result yet)."""
    return await hosts_by_status(state.db)


@router.post("/host-status", response_model=HostStatusOut, dependencies=[needs(Perm.HOSTS_READ)])
async def host_status(body: NamesIn, user: User, state: State) -> dict[str, Any]:
    """The latest status, task and time of each named host (for a page of the host list)."""
    return {"hosts": await host_statuses(state.db, body.hosts)}
