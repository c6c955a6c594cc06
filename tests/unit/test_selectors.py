"""Target selectors, pure: a selector and hosts in, the matching enabled hosts out."""

from __future__ import annotations

import pytest

from smallyi.errors import InputError
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.selectors import Selector, missing_names, select

HOSTS = [
    HostSpec("web-1", "10.0.0.1", labels={"env": "prod", "tier": "front"}, groups=("web", "prod")),
    HostSpec("web-2", "10.0.0.2", labels={"env": "staging", "tier": "front"}, groups=("web",)),
    HostSpec("db-1", "10.0.0.3", labels={"env": "prod", "tier": "back"}, groups=("db", "prod")),
    HostSpec("old-1", "10.0.0.4", labels={"env": "prod"}, groups=("web", "prod"), enabled=False),
]


def names(selector: Selector) -> list[str]:
    return [h.name for h in select(selector, HOSTS)]


def test_group() -> None:
    """A group selects its enabled members, in inventory order."""
    assert names(Selector(group="web")) == ["web-1", "web-2"]


def test_hosts() -> None:
    """Host names select exactly those hosts, in inventory order (not the order asked)."""
    assert names(Selector(hosts=("db-1", "web-1"))) == ["web-1", "db-1"]


def test_labels_must_all_match() -> None:
    """Every label of the selector must be on the host with the same value."""
    assert names(Selector(labels={"env": "prod"})) == ["web-1", "db-1"]
    assert names(Selector(labels={"env": "prod", "tier": "front"})) == ["web-1"]
    assert names(Selector(labels={"env": "dev"})) == []


def test_parts_combine_with_and() -> None:
    """Group, hosts and labels given together must all hold."""
    assert names(Selector(group="prod", labels={"tier": "back"})) == ["db-1"]
    assert names(Selector(group="web", hosts=("web-2", "db-1"))) == ["web-2"]
    assert names(Selector(group="web", hosts=("web-1", "web-2"), labels={"env": "staging"})) == ["web-2"]


def test_disabled_hosts_are_never_selected() -> None:
    """A disabled host is left out, even when named explicitly."""
    assert "old-1" not in names(Selector(group="prod"))
    assert names(Selector(hosts=("old-1",))) == []


def test_empty_selector_is_an_error() -> None:
    """A selector with no group, no hosts and no labels is refused with field 'target'."""
    with pytest.raises(InputError, match="give a target") as info:
        Selector()
    assert info.value.field == "target"
    with pytest.raises(InputError):
        Selector(group="", hosts=(), labels={})


def test_missing_names_reports_typos() -> None:
    """Names the selector asks for that no host has are listed, in the order asked."""
    assert missing_names(Selector(hosts=("web-1", "wbe-2", "db-9")), HOSTS) == ["wbe-2", "db-9"]


def test_describe_and_to_dict() -> None:
    """A selector describes itself for messages and round-trips to a dict for the archive."""
    sel = Selector(group="web", hosts=("a", "b"), labels={"env": "prod"})
    assert sel.describe() == "group web and hosts a,b and labels env=prod"
    assert sel.to_dict() == {"group": "web", "hosts": ["a", "b"], "labels": {"env": "prod"}}
    assert Selector(group="g").to_dict() == {"group": "g"}
