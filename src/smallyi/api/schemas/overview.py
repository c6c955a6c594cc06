"""What the dashboard's overview routes answer (``inventory.status``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer
from smallyi.types import HostStatus


class HostsOverviewOut(Answer):
    total: int = Field(description="every host, enabled or not")
    disabled: int
    by_status: dict[str, int] = Field(
        description="enabled hosts by the status of their latest finished result (never: no result yet); "
                    "statuses no host has are left out")


class LatestOut(Answer):
    """One host's latest finished result."""

    status: HostStatus | Literal["never"]
    task_id: int | None = Field(description="null when the host never ran a task")
    at: str | None = Field(description="when that result finished")


class HostStatusOut(Answer):
    hosts: dict[str, LatestOut] = Field(description="by host name, every name asked for")
