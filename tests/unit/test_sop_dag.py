"""DAG planning on its own: implicit order, waves, ancestors, cycles."""

from __future__ import annotations

import pytest

from smallyi.sop.dag import find_cycle, implicit_needs, plan_of


def test_implicit_needs_chain_the_file_order() -> None:
    """Steps without needs follow the one before; explicit needs (even empty) are kept."""
    needs = implicit_needs(["a", "b", "c", "d"], {"a": None, "b": None, "c": [], "d": ["a", "c"]})
    assert needs == {"a": (), "b": ("a",), "c": (), "d": ("a", "c")}


def test_waves_group_steps_that_can_run_together() -> None:
    """A step's wave is one after its latest need: a diamond is three waves, the middle in parallel."""
    p = plan_of({"start": (), "left": ("start",), "right": ("start",), "end": ("left", "right")})
    assert p.waves == (("start",), ("left", "right"), ("end",))
    assert p.order[0] == "start" and p.order[-1] == "end"


def test_ancestors_and_dependents() -> None:
    """Ancestors are every step waited for, directly or not; dependents the direct followers."""
    p = plan_of({"a": (), "b": ("a",), "c": ("b",), "d": ()})
    assert p.ancestors("c") == {"a", "b"} and p.ancestors("d") == frozenset()
    assert p.dependents("a") == ("b",)


def test_cycles_are_found_as_paths() -> None:
    """A cycle comes back as the path that closes it; a DAG has none."""
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) in (["a", "b", "c", "a"], ["a", "c", "b", "a"])
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    assert find_cycle({"a": ["missing"]}) is None


def test_plan_refuses_a_cycle() -> None:
    """Planning a cyclic graph is an error (validation reports cycles before planning)."""
    with pytest.raises(ValueError, match="cycle"):
        plan_of({"a": ("b",), "b": ("a",)})


def test_a_wide_fan_out_is_one_wave() -> None:
    """A hundred independent steps after one form one wave in file order."""
    needs = {"root": (), **{f"s{i}": ("root",) for i in range(100)}}
    p = plan_of(needs)
    assert len(p.waves) == 2 and p.waves[1] == tuple(f"s{i}" for i in range(100))
