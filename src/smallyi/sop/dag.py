"""Planning: steps and their ``needs`` as a DAG, in waves that can run in parallel. Pure.

A step without ``needs:`` follows the step before it in the file (the original's examples are
sequential); ``needs: []`` starts at once. Handler steps (named by ``on_failure: {run: ...}``) stay
out of the flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from smallyi.sop.model import Sop


@dataclass(frozen=True, slots=True)
class Plan:
    #: step id → the ids it needs, in the order written
    needs: Mapping[str, tuple[str, ...]]
    #: a topological order (ties in file order)
    order: tuple[str, ...]
    #: steps by wave: a step's wave is one more than the latest wave among its needs
    waves: tuple[tuple[str, ...], ...]

    def ancestors(self, step_id: str) -> frozenset[str]:
        """Every step ``step_id`` waits for, directly or not."""
        seen: set[str] = set()
        stack = list(self.needs.get(step_id, ()))
        while stack:
            s = stack.pop()
            if s not in seen:
                seen.add(s)
                stack.extend(self.needs.get(s, ()))
        return frozenset(seen)

    def dependents(self, step_id: str) -> tuple[str, ...]:
        return tuple(s for s in self.order if step_id in self.needs[s])

    def to_dict(self) -> dict[str, object]:
        return {"waves": [list(w) for w in self.waves], "needs": {k: list(v) for k, v in self.needs.items()}}


def implicit_needs(ids: Sequence[str], explicit: Mapping[str, Sequence[str] | None]) -> dict[str, tuple[str, ...]]:
    """Each flow step's needs: as written, or the step before it when it wrote none (None)."""
    out: dict[str, tuple[str, ...]] = {}
    prev: str | None = None
    for sid in ids:
        given = explicit.get(sid)
        out[sid] = tuple(given) if given is not None else ((prev,) if prev else ())
        prev = sid
    return out


def find_cycle(needs: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as a path ``[a, b, ..., a]``, or None; unknown names are ignored (reported elsewhere)."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(needs, white)
    parent: dict[str, str] = {}
    for root in needs:
        if color[root] != white:
            continue
        stack: list[tuple[str, list[str]]] = [(root, [n for n in needs[root] if n in needs])]
        color[root] = grey
        while stack:
            node, todo = stack[-1]
            if not todo:
                color[node] = black
                stack.pop()
                continue
            nxt = todo.pop(0)
            if color[nxt] == grey:
                path = [nxt, node]
                while path[-1] != nxt:
                    path.append(parent[path[-1]])
                return list(reversed(path))
            if color[nxt] == white:
                color[nxt] = grey
                parent[nxt] = node
                stack.append((nxt, [n for n in needs[nxt] if n in needs]))
    return None


def plan_of(needs: Mapping[str, tuple[str, ...]]) -> Plan:
    """Order and waves of an acyclic ``needs`` (ValueError on a cycle: validate first)."""
    ids = list(needs)
    wave: dict[str, int] = {}
    order: list[str] = []
    remaining = dict(needs)
    while remaining:
        ready = [s for s in ids if s in remaining and all(n in wave for n in remaining[s])]
        if not ready:
            raise ValueError(f"cycle among {sorted(remaining)}")
        for s in ready:
            wave[s] = 1 + max((wave[n] for n in needs[s]), default=0)
            order.append(s)
            del remaining[s]
    top = max(wave.values(), default=0)
    waves = tuple(tuple(s for s in order if wave[s] == w) for w in range(1, top + 1))
    return Plan(needs=dict(needs), order=tuple(order), waves=waves)


def plan(sop: Sop) -> Plan:
    return plan_of({s.id: s.needs for s in sop.flow})
