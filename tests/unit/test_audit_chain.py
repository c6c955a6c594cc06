"""The audit hash chain (smallyi.audit.chain) and its exports: edits and deletions are named."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from smallyi.audit.chain import GENESIS, Entry, link, verify
from smallyi.audit.export import csv_rows, jsonl


def chain(n: int) -> list[Entry]:
    out, prev = [], GENESIS
    for i in range(1, n + 1):
        e = Entry(i, datetime(2026, 11, 27, 10, 0, i, tzinfo=UTC), "alice", "api", "10.0.0.1", "task.create",
                  "group web", "ok", "tasks.run", {"task": i, "command": "uptime"}, prev)
        e = dataclasses.replace(e, hash=link(prev, e))
        out.append(e)
        prev = e.hash
    return out


def check(entries: list[Entry], *, head: Entry | None = None) -> list[str]:
    last = head or entries[-1]
    return [f.message for f in verify(entries, anchor_id=0, anchor_hash=GENESIS, head_id=last.id,
                                      head_hash=last.hash).findings]


def test_an_untouched_chain_verifies() -> None:
    """Records linked in order verify with no finding."""
    assert check(chain(5)) == []


def test_an_edited_field_names_that_record() -> None:
    """Changing any field of record 3 is reported as record 3 edited."""
    es = chain(5)
    es[2] = dataclasses.replace(es[2], actor="mallory")
    assert check(es) == ["record 3 was edited: its content (task.create by mallory at 2026-11-27T10:00:03+00:00) "
                         "does not match its hash"]


def test_a_recomputed_hash_is_caught_by_the_next_link() -> None:
    """Re-hashing an edited record moves the break to the next record's link, which names the edited one."""
    es = chain(5)
    edited = dataclasses.replace(es[2], result="failed")
    es[2] = dataclasses.replace(edited, hash=link(edited.prev_hash, edited))
    assert any("record 3 was edited or replaced" in m for m in check(es))


def test_deleted_records_are_named_in_the_middle_and_at_the_end() -> None:
    """A gap in the ids names the deleted records; a head beyond the last record names the tail."""
    es = chain(6)
    head = es[-1]
    kept = [es[0], es[3], es[4]]
    msgs = check(kept, head=head)
    assert "records 2 to 3 deleted (the ids jump from 1 to 4)" in msgs[0]
    assert msgs[-1] == "record 6 deleted from the end of the trail"


def test_exports_carry_every_field_and_defuse_spreadsheet_formulas() -> None:
    """JSON lines round-trip; CSV has a header and prefixes cells that a spreadsheet would run."""
    es = chain(2)
    es[1] = dataclasses.replace(es[1], target="=HYPERLINK(\"http://x\")")
    assert json.loads(next(jsonl(es)))["hash"] == es[0].hash
    rows = list(csv_rows(es))
    assert rows[0].startswith("id,at,actor") and "'=HYPERLINK" in rows[2]
