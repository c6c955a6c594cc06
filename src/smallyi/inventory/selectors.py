"""Target selectors: which hosts a task runs on. Pure: a selector and hosts in, hosts out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from smallyi.errors import InputError
from smallyi.inventory.hosts import HostSpec


@dataclass(frozen=True, slots=True)
class Selector:
    """Hosts in ``group`` AND named in ``hosts`` AND carrying every label in ``labels``.

    Each part left empty does not restrict; at least one part must be given. Disabled hosts are
    never selected.
    """

    group: str | None = None
    hosts: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.group and not self.hosts and not self.labels:
            raise InputError("give a target: a group, host names or labels", field="target")

    def describe(self) -> str:
        parts = []
        if self.group:
            parts.append(f"group {self.group}")
        if self.hosts:
            parts.append("hosts " + ",".join(self.hosts))
        if self.labels:
            parts.append("labels " + ",".join(f"{k}={v}" for k, v in self.labels.items()))
        return " and ".join(parts)

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Selector:
        """A selector from its stored :meth:`to_dict` form (a schedule's or an approval request's target)."""
        hosts, labels = d.get("hosts") or (), d.get("labels") or {}
        if not isinstance(hosts, list | tuple) or not isinstance(labels, Mapping):
            raise InputError("target: hosts must be a list and labels a mapping", field="target")
        return cls(group=str(d["group"]) if d.get("group") else None, hosts=tuple(str(h) for h in hosts),
                   labels={str(k): str(v) for k, v in labels.items()})

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.group:
            out["group"] = self.group
        if self.hosts:
            out["hosts"] = list(self.hosts)
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


def select(selector: Selector, hosts: Iterable[HostSpec]) -> list[HostSpec]:
    """The enabled hosts matching ``selector``, in the order of ``hosts``."""
    wanted = set(selector.hosts)
    labels = selector.labels.items()
    return [
        h
        for h in hosts
        if h.enabled
        and (not selector.group or selector.group in h.groups)
        and (not wanted or h.name in wanted)
        and all(h.labels.get(k) == v for k, v in labels)
    ]


def missing_names(selector: Selector, hosts: Sequence[HostSpec]) -> list[str]:
    """Host names the selector asks for that are not in ``hosts`` (typos are worth an error)."""
    known = {h.name for h in hosts}
    return [n for n in selector.hosts if n not in known]
