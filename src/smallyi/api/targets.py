"""The target a request names (a task, a schedule, an SOP run, `/targets/resolve`): one model, one set of
bounds, so every route accepts and refuses the same targets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smallyi.inventory.selectors import Selector

#: host names one target may list (an SOP step takes as many: ``sop.steps.hosts.MAX_HOSTS``)
MAX_NAMED_HOSTS = 100_000


class TargetIn(BaseModel):
    """Hosts in ``group`` AND named in ``hosts`` AND carrying every label in ``labels``; parts left empty do
    not restrict."""

    model_config = ConfigDict(extra="forbid")
    group: str | None = Field(default=None, max_length=255)
    hosts: list[str] = Field(default_factory=list, max_length=MAX_NAMED_HOSTS)
    labels: dict[str, str] = Field(default_factory=dict)

    def selector(self) -> Selector:
        """The selector (InputError when no part is given)."""
        return Selector(group=self.group or None, hosts=tuple(self.hosts), labels=dict(self.labels))

    def given(self) -> dict[str, Any] | None:
        """Only the parts given, as stored with a schedule or a run (None when none is)."""
        return {k: v for k, v in self.model_dump().items() if v} or None
