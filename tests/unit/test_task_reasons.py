"""Distinct failure reasons: a host's own address and port do not split a reason into one per host."""

from __future__ import annotations

import pytest

from smallyi.tasks.reasons import group, shape, template


@pytest.mark.parametrize(("reason", "address", "expected"), [
    ("127.0.9.7:9: connection refused", "127.0.9.7", "<address>:<port>: connection refused"),
    ("connect to 10.0.0.5:22 timed out after 10s", "10.0.0.5", "connect to <address>:<port> timed out after 10s"),
    ("host key mismatch for [10.0.0.5]:2222: run `small-yi hostkeys forget [10.0.0.5]:2222`", "10.0.0.5",
     "host key mismatch for <address>:<port>: run `small-yi hostkeys forget <address>:<port>`"),
    ("authentication failed for user ops on web-3.example.com:22: key refused", "web-3.example.com",
     "authentication failed for user ops on <address>:<port>: key refused"),
    ("[fd00::7]:22: connection refused", "fd00::7", "<address>:<port>: connection refused"),
    # only the whole address: a longer address or number that contains it is left alone
    ("10.0.0.50:22: connection refused", "10.0.0.5", "10.0.0.50:22: connection refused"),
    ("exit status 3", "10.0.0.3", "exit status 3"),
    ("cancelled", "", "cancelled"),
])
def test_the_hosts_own_address_becomes_a_placeholder(reason: str, address: str, expected: str) -> None:
    """The address (bracketed or not, with its port) is replaced as a whole word, nothing else."""
    assert template(reason, address) == expected


def test_five_hundred_unreachable_hosts_are_one_reason() -> None:
    """500 hosts refused on their own addresses and 3 that failed: two groups, counted, worst first, each
    naming its first hosts; a reason every host gave word for word is shown as it is."""
    rows = [{"host": f"host-{i:03d}", "address": f"10.1.{i // 250}.{i % 250}", "status": "unreachable",
             "reason": f"10.1.{i // 250}.{i % 250}:22: connection refused"} for i in range(500)]
    rows += [{"host": f"db-{i}", "address": f"10.2.0.{i}", "status": "failed", "reason": "exit status 3"}
             for i in range(3)]
    rows += [{"host": "ok", "address": "10.3.0.1", "status": "success", "reason": ""}]
    groups = group(rows, keep=4)
    assert groups == [
        {"status": "unreachable", "reason": "<address>:<port>: connection refused", "count": 500,
         "hosts": ["host-000", "host-001", "host-002", "host-003"]},
        {"status": "failed", "reason": "exit status 3", "count": 3, "hosts": ["db-0", "db-1", "db-2"]},
    ]


def test_a_single_hosts_reason_is_shown_as_it_came() -> None:
    """One host behind a reason: its own text, address included; same status, other reason: another group."""
    rows = [{"host": "a", "address": "10.0.0.1", "status": "unreachable", "reason": "10.0.0.1:22: connection refused"},
            {"host": "b", "address": "10.0.0.2", "status": "unreachable", "reason": "10.0.0.2:22: no route to host"},
            {"host": "c", "address": "10.0.0.3", "status": "timeout", "reason": "timed out after 1s"},
            {"host": "d", "address": "10.0.0.4", "status": "timeout", "reason": "timed out after 1s"}]
    assert [(g["status"], g["reason"], g["count"]) for g in group(rows)] == [
        ("unreachable", "10.0.0.1:22: connection refused", 1), ("unreachable", "10.0.0.2:22: no route to host", 1),
        ("timeout", "timed out after 1s", 2)]


def test_the_live_view_tells_reasons_apart_without_the_address() -> None:
    """Any address:port becomes a placeholder (the live view has no address at hand); nothing else changes."""
    assert shape("127.0.9.7:9: connection refused") == shape("10.0.0.1:22: connection refused")
    assert shape("connect to [fd00::7]:22 timed out after 10s") == "connect to <address>:<port> timed out after 10s"
    assert shape("authentication failed for user ops on web-3.example.com:2222: key refused") == \
        "authentication failed for user ops on <address>:<port>: key refused"
    assert shape("exit status 3") == "exit status 3" and shape("timed out after 1s") == "timed out after 1s"
