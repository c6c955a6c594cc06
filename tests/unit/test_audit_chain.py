"""The audit hash chain (smallyi.audit.chain) and its exports: edits and deletions are named."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

from smallyi.audit.anchor import Anchor
from smallyi.audit.chain import GENESIS, MAC_NONE, MAC_V1, AuditKeys, Entry, HeadState, link, verify
from smallyi.audit.crosscheck import Ledger, SessionRow, TaskRow
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
    assert check(es) == ["record 3 was edited: its content (task.create by mallory at 2026-11-27T10:00:03Z) "
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


KEYS = AuditKeys({"k1": b"\x01" * 32, "k0": b"\x00" * 32}, "k1")


def signed(entries: list[Entry], keys: AuditKeys = KEYS, *, start: int = 1) -> list[Entry]:
    """MAC every record from id ``start`` on, as the trail writes them."""
    return [dataclasses.replace(e, mac_version=MAC_V1, mac_key=keys.current, mac=keys.sign(e.id, e.hash))
            if e.id >= start else e for e in entries]


def head_of(entries: list[Entry], *, mac_from: int = 1, keys: AuditKeys | None = KEYS) -> HeadState:
    last = entries[-1]
    h = HeadState(last.id, last.hash, 0, GENESIS, mac_from)
    return dataclasses.replace(h, mac_key=keys.current, mac=keys.sign_head(h)) if keys else h


def mac_check(entries: list[Entry], head: HeadState, keys: AuditKeys = KEYS) -> tuple[list[str], int, int]:
    rep = verify(entries, anchor_id=0, anchor_hash=GENESIS, head_id=head.seq, head_hash=head.hash, keys=keys,
                 head=head)
    return [f.message for f in rep.findings], rep.authenticated, rep.legacy


def rechain(entries: list[Entry], *, prev: str = GENESIS) -> list[Entry]:
    """What an attacker with database write access can do: recompute every hash after an edit."""
    out = []
    for e in entries:
        e = dataclasses.replace(e, prev_hash=prev)
        e = dataclasses.replace(e, hash=link(prev, e))
        out.append(e)
        prev = e.hash
    return out


def test_signed_records_verify_and_are_counted_as_authenticated() -> None:
    """Every record MAC'd with the current key, and the head too: no finding, all authenticated."""
    es = signed(chain(5))
    assert mac_check(es, head_of(es)) == ([], 5, 0)


def test_a_rechained_trail_fails_its_macs() -> None:
    """Editing record 3 and recomputing every hash after it satisfies the chain but not the MACs."""
    es = signed(chain(5))
    es[2] = dataclasses.replace(es[2], actor="mallory")
    forged = es[:2] + rechain(es[2:], prev=es[1].hash)
    head = dataclasses.replace(head_of(es), hash=forged[-1].hash)  # the attacker moves the head too
    msgs, ok, _ = mac_check(forged, head)
    assert [m for m in msgs if "MAC does not match" in m and m.startswith("record ")] == [
        f"record {i} ({'task.create by ' + ('mallory' if i == 3 else 'alice')} at 2026-11-27T10:00:0{i}Z): "
        "its MAC does not match: it was edited, or the chain was recomputed, by someone without the audit key"
        for i in (3, 4, 5)]
    assert any("head row" in m for m in msgs) and ok == 2


def test_macs_stripped_by_the_attacker_are_named() -> None:
    """A record from ``mac_from`` on without a MAC is a finding, not a legacy record."""
    es = signed(chain(4))
    es[3] = dataclasses.replace(es[3], mac_version=MAC_NONE, mac_key="", mac="")
    msgs, _, legacy = mac_check(es, head_of(es))
    assert legacy == 0 and msgs == ["record 4 (task.create by alice at 2026-11-27T10:00:04Z) carries no MAC, "
                                    "though every record from 1 on must: it was written or rewritten by someone "
                                    "without the audit key"]


def test_records_from_before_macs_still_verify_and_are_sealed_by_the_next_macd_one() -> None:
    """Records below mac_from (written before the upgrade) verify by the chain alone; rewriting them and
    re-chaining up to the first MAC'd record breaks that record's link (its MAC covers its hash)."""
    es = signed(chain(6), start=4)
    assert mac_check(es, head_of(es, mac_from=4)) == ([], 3, 3)
    old = dataclasses.replace(es[1], actor="mallory")
    forged = [es[0], *rechain([old, es[2]], prev=es[0].hash), *es[3:]]
    msgs, _, _ = mac_check(forged, head_of(es, mac_from=4))
    assert any(m.startswith("record 3 was edited or replaced") for m in msgs)
    forged_all = [es[0], *rechain([old, *es[2:]], prev=es[0].hash)]
    assert any("MAC does not match" in m for m in mac_check(forged_all, head_of(forged_all, mac_from=4))[0])


def test_the_head_row_cannot_move_the_mac_boundary() -> None:
    """Raising mac_from (to pass stripped records off as old ones) breaks the head's MAC."""
    es = signed(chain(3))
    head = dataclasses.replace(head_of(es), mac_from=10)
    msgs, _, _ = mac_check(es, head)
    assert any("head row" in m for m in msgs)


def test_an_older_key_still_verifies_and_an_unknown_key_is_named() -> None:
    """Records signed with an older key in the file verify; one signed with a key we lack is unverifiable."""
    old = AuditKeys(KEYS.keys, "k0")
    es = signed(chain(2), old)
    assert mac_check(es, head_of(es))[0] == []
    es[1] = dataclasses.replace(es[1], mac_key="gone")
    assert "not in the audit key file" in mac_check(es, head_of(es))[0][0]


def test_canonical_form_ignores_the_mac_fields() -> None:
    """Adding MAC fields does not change a record's hash: records written before MACs keep verifying."""
    e = chain(1)[0]
    assert link(GENESIS, signed([e])[0]) == e.hash


def anchor_of(e: Entry, *, mac_from: int = 1, keys: AuditKeys = KEYS) -> Anchor:
    return Anchor(e.id, e.hash, e.mac, mac_from, "2026-11-27T10:00:00+00:00").signed(keys)


def held(entries: list[Entry], head: HeadState, anchor: Anchor | None) -> list[tuple[str, str]]:
    rep = verify(entries, anchor_id=0, anchor_hash=GENESIS, head_id=head.seq, head_hash=head.hash, keys=KEYS,
                 head=head, external=anchor, anchor_file="/srv/audit.anchor")
    return [(f.kind, f.message) for f in rep.findings]


def test_a_trail_that_reaches_its_anchor_verifies_and_says_so() -> None:
    """The anchored record is there, with its hash and MAC: no finding, and the report says it matched."""
    es = signed(chain(5))
    rep = verify(es, anchor_id=0, anchor_hash=GENESIS, head_id=5, head_hash=es[-1].hash, keys=KEYS,
                 head=head_of(es), external=anchor_of(es[3]), anchor_file="/srv/audit.anchor")
    assert rep.ok and rep.anchor_matched and rep.anchor is not None and rep.anchor.seq == 4
    assert rep.to_dict()["anchor"] == {"file": "/srv/audit.anchor", "seq": 4, "hash": es[3].hash,
                                       "at": "2026-11-27T10:00:00+00:00", "matched": True}


def test_records_cut_from_the_end_under_an_old_signed_head_fail_against_the_anchor() -> None:
    """Cutting records 4-5 and putting back the head as it was at 3 (its MAC valid) passes every MAC; the anchor
    at 5 names the cut."""
    es = signed(chain(5))
    old_head = head_of(es[:3])
    assert held(es[:3], old_head, None)[0][0] == "unanchored"
    findings = held(es[:3], old_head, anchor_of(es[4]))
    assert [k for k, _ in findings] == ["truncated"]
    assert "the trail ends at record 3, but the anchor in /srv/audit.anchor (written 2026-11-27T10:00:00+00:00) " \
           "vouches for record 5: records 4 to 5 were cut from the end" in findings[0][1]


def test_a_trail_cut_and_written_again_past_its_anchor_is_named() -> None:
    """New records under the cut ids do not pass for the anchored one: its hash differs."""
    es = signed(chain(5))
    again = signed(rechain([dataclasses.replace(e, actor="mallory") for e in es[3:]], prev=es[2].hash))
    trail = es[:3] + again
    assert [k for k, _ in held(trail, head_of(trail), anchor_of(es[4]))] == ["rewritten"]


def test_stripped_macs_and_a_boundary_past_the_end_fail() -> None:
    """Every MAC blanked and mac_from past the end passed as a pre-MAC trail; the anchor's MAC and boundary
    say otherwise, and a boundary past the end fails even without an anchor."""
    es = signed(chain(4))
    bare = [dataclasses.replace(e, mac_version=MAC_NONE, mac_key="", mac="") for e in es]
    head = HeadState(4, es[-1].hash, 0, GENESIS, 5)
    kinds = [k for k, _ in held(bare, head, anchor_of(es[3]))]
    assert sorted(kinds) == ["boundary", "boundary", "forged"]
    assert mac_check(bare, head)[0] and "past the trail's end" in mac_check(bare, head)[0][0]


def test_a_forged_or_stale_anchor_is_named() -> None:
    """An anchor edited without the key, or one the purge has left behind, is a finding."""
    es = signed(chain(3))
    a = dataclasses.replace(anchor_of(es[2]), at="2027-01-01T00:00:00+00:00")
    assert ("forged", "the anchor in /srv/audit.anchor (written 2027-01-01T00:00:00+00:00) does not match its "
                      "signature: it was edited by someone without the audit key") in held(es, head_of(es), a)
    purged = HeadState(3, es[2].hash, 2, es[1].hash, 1)
    purged = dataclasses.replace(purged, mac_key=KEYS.current, mac=KEYS.sign_head(purged))
    rep = verify(es[2:], anchor_id=2, anchor_hash=es[1].hash, head_id=3, head_hash=es[2].hash, keys=KEYS,
                 head=purged, external=anchor_of(es[0]), anchor_file="/srv/audit.anchor")
    assert [f.kind for f in rep.findings] == ["stale"]


def entry_of(action: str, detail: dict[str, object], actor: str = "alice", target: str = "") -> Entry:
    return Entry(1, datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC), actor, "api", "", action, target, "ok", "",
                 detail)


def test_the_ledger_names_rows_without_their_records_both_ways() -> None:
    """Tasks and sessions are held against task.create and terminal.open records: a row with no record, a row
    that differs from its record, and a record whose row is gone are each named; rows older than the trail are
    counted, not checked."""
    at = datetime(2026, 11, 27, 10, 0, 0, 500_000, tzinfo=UTC)
    ledger = Ledger(top_task=5, top_session=2)
    ledger.feed(entry_of("task.create", {"task": 1, "command": "uptime"}))
    ledger.feed(entry_of("task.create", {"task": 2, "command": "uptime"}))
    ledger.feed(entry_of("task.create", {"task": 4, "command": "df -h"}))
    ledger.feed(entry_of("task.create", {"task": 9, "command": "later"}))  # past top: written during the check
    ledger.feed(entry_of("terminal.open", {"session": 1}, target="web-1"))
    ledger.task(TaskRow(1, "alice", "uptime", at))
    ledger.task(TaskRow(2, "alice", "cat /etc/shadow", at))
    ledger.task(TaskRow(3, "mallory", "id", at))
    ledger.task(TaskRow(5, "alice", "old", at - timedelta(days=1)))
    ledger.session(SessionRow(1, "alice", "web-1", at))
    ledger.session(SessionRow(2, "mallory", "db-1", at))
    found = [(f.kind, f.subject) for f in ledger.finish()]
    assert found == [("mismatch", "task 2"), ("unrecorded", "task 3"), ("unrecorded", "session 2"),
                     ("vanished", "task 4")]
    assert (ledger.tasks_checked, ledger.sessions_checked, ledger.before_trail) == (3, 2, 1)


def test_the_ledger_lists_a_bounded_number_of_findings() -> None:
    """A database full of unrecorded rows gives the first ones and a count, not an unbounded report."""
    from smallyi.audit.crosscheck import MAX_LISTED

    ledger = Ledger(top_task=MAX_LISTED + 50, top_session=0)
    ledger.feed(entry_of("auth.login", {}))
    for i in range(1, MAX_LISTED + 51):
        ledger.task(TaskRow(i, "x", "y", datetime(2026, 11, 28, tzinfo=UTC)))
    found = ledger.finish()
    assert len(found) == MAX_LISTED + 1 and found[-1].message == "... and 50 more unrecorded task(s) or session(s)"
