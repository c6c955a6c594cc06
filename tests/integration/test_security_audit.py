"""The audit chain against a tampered database: `small-yi audit verify` names the edited and deleted
records; purge deletes only an expired run that verifies, keeps the chain verifiable and is itself
recorded; export and search from the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from support import cli, write_config


def _db(cfg: Path) -> sqlite3.Connection:
    return sqlite3.connect(cfg.parent / "data" / "small-yi.db")


def _seed(cfg: Path) -> None:
    for i in range(3):
        assert cli("run", "--hosts", "local", "--cmd", f"echo {i}", "--quiet", config=cfg).returncode == 0


def test_verify_passes_on_an_untouched_trail(tmp_path: Path) -> None:
    """After a few runs the chain verifies: exit 0 and the number of records checked."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    r = cli("audit", "verify", "--output", "json", config=cfg)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["ok"] and rep["checked"] >= 6 and len(rep["head_hash"]) == 64


def test_verify_names_an_edited_record(tmp_path: Path) -> None:
    """Changing one field of one record (here: who ran a command) is reported as that record, edited."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    with _db(cfg) as db:
        db.execute("UPDATE audit_log SET actor = 'someone-else' WHERE id = 3")
    r = cli("audit", "verify", config=cfg)
    assert r.returncode == 1
    assert "record 3 was edited" in r.stdout and "TAMPERED" in r.stdout


def test_verify_names_deleted_records_in_the_middle_and_at_the_end(tmp_path: Path) -> None:
    """Deleting records 2-3 and the last one is reported with their ids."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    with _db(cfg) as db:
        last = db.execute("SELECT max(id) FROM audit_log").fetchone()[0]
        db.execute("DELETE FROM audit_log WHERE id IN (2, 3)")
        db.execute("DELETE FROM audit_log WHERE id = ?", (last,))
    out = cli("audit", "verify", "--output", "json", config=cfg)
    assert out.returncode == 1
    messages = [f["message"] for f in json.loads(out.stdout)["findings"]]
    assert any("records 2 to 3 deleted" in m for m in messages)
    assert any(f"record {last} deleted from the end" in m for m in messages)


def test_a_rehashed_edit_is_still_caught_by_the_next_link(tmp_path: Path) -> None:
    """Recomputing an edited record's own hash does not help: the next record links to the old hash."""
    import hashlib

    cfg = write_config(tmp_path)
    _seed(cfg)
    with _db(cfg) as db:
        db.execute("UPDATE audit_log SET result = 'ok', hash = ? WHERE id = 2", (hashlib.sha256(b"x").hexdigest(),))
    r = cli("audit", "verify", config=cfg)
    assert r.returncode == 1 and "record 2 was edited" in r.stdout


def _age(cfg: Path, through: int, at: str = "2020-01-01 00:00:00") -> None:
    """Make records 1 to ``through`` as old as if small-yi had written them at ``at``: their timestamps, and
    every hash and MAC from there on, the head's and the external anchor, made again with the audit key, as
    the server would."""
    import asyncio
    import dataclasses
    from datetime import UTC, datetime

    from sqlalchemy import select, update

    from smallyi.audit.anchor import Anchor
    from smallyi.audit.chain import AuditKeys, HeadState, link
    from smallyi.audit.trail import entry
    from smallyi.config import load_settings
    from smallyi.secrets import keyring
    from smallyi.storage.db import open_database
    from smallyi.storage.models import AuditHead, AuditRecord

    settings = load_settings(str(cfg))
    keys = AuditKeys(*keyring.load_audit_keys(settings.audit, create=False)[:2])
    when = datetime.fromisoformat(at).replace(tzinfo=UTC)

    async def go() -> None:
        db = await open_database(settings)
        try:
            async with db.session.begin() as s:
                prev = "0" * 64
                for r in (await s.scalars(select(AuditRecord).order_by(AuditRecord.id))).all():
                    e = dataclasses.replace(entry(r), prev_hash=prev, at=when if r.id <= through else r.at)
                    h = link(prev, e)
                    await s.execute(update(AuditRecord).where(AuditRecord.id == r.id).values(
                        at=e.at, prev_hash=prev, hash=h, mac_key=keys.current, mac=keys.sign(r.id, h)))
                    prev = h
                head = await s.get(AuditHead, 1)
                assert head is not None
                state = HeadState(head.seq, prev, head.anchor_seq, head.anchor_hash, head.mac_from)
                await s.execute(update(AuditHead).where(AuditHead.id == 1).values(
                    hash=prev, mac_key=keys.current, mac=keys.sign_head(state)))
                anchor = Anchor(head.seq, prev, keys.sign(head.seq, prev), head.mac_from, "2026-01-01T00:00:00+00:00")
                Path(settings.audit.anchor_file).write_text(json.dumps(anchor.signed(keys).to_dict()))
        finally:
            await db.close()

    asyncio.run(go())


def _ids(cfg: Path) -> list[int]:
    with _db(cfg) as db:
        return [i for (i,) in db.execute("SELECT id FROM audit_log ORDER BY id")]


def test_purge_keeps_the_chain_verifiable_and_is_recorded(tmp_path: Path) -> None:
    """Records older than the retention are purged; verify still passes from the anchor; the purge is a record."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    _age(cfg, 4)
    assert cli("audit", "verify", config=cfg).returncode == 0  # aged as if written then: still intact
    r = cli("audit", "purge", config=cfg)
    assert r.returncode == 0 and "purged 4 records" in r.stdout, r.stdout + r.stderr
    v = cli("audit", "verify", "--output", "json", config=cfg)
    assert v.returncode == 0, v.stdout
    s = cli("audit", "search", "--action", "audit.purge", "--output", "json", config=cfg)
    item = json.loads(s.stdout)["items"][0]
    assert item["detail"]["deleted"] == 4 and item["actor"].startswith("cli:")


def test_a_backdated_recent_record_does_not_take_younger_ones_with_it(tmp_path: Path) -> None:
    """Backdating one recent record by hand does not let the purge delete the young records before it: the
    purge stops at the first young record, and verify names the backdated one."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    _age(cfg, 2)
    before = _ids(cfg)
    with _db(cfg) as db:
        db.execute("UPDATE audit_log SET at = '2020-01-01 00:00:00' WHERE id = 5")
    r = cli("audit", "purge", config=cfg)
    assert r.returncode == 0 and "purged 2 records" in r.stdout, r.stdout + r.stderr
    assert _ids(cfg)[: len(before) - 2] == before[2:]  # records 3 on, younger than the retention, all kept
    v = cli("audit", "verify", "--output", "json", config=cfg)
    assert v.returncode == 1
    assert [(f["first"], f["kind"]) for f in json.loads(v.stdout)["findings"]] == [(5, "edited")]


def test_purge_refuses_to_delete_records_that_do_not_verify(tmp_path: Path) -> None:
    """Backdating the first young record (so it joins the expired stretch) makes the purge refuse: nothing is
    deleted, the refusal is an error and a record, and verify still names the tampered record."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    _age(cfg, 2)
    with _db(cfg) as db:
        db.execute("UPDATE audit_log SET at = '2020-01-01 00:00:00' WHERE id = 3")
    before = _ids(cfg)
    r = cli("audit", "purge", config=cfg)
    assert r.returncode == 2 and "purge refused" in r.stderr and "record 3 was edited" in r.stderr, r.stderr
    assert _ids(cfg)[: len(before)] == before
    s = cli("audit", "search", "--action", "audit.purge", "--output", "json", config=cfg)
    item = json.loads(s.stdout)["items"][0]
    assert item["result"] == "refused" and item["detail"]["deleted"] == 0
    assert any("record 3 was edited" in m for m in item["detail"]["findings"])
    v = cli("audit", "verify", "--output", "json", config=cfg)
    assert v.returncode == 1 and any(f["first"] == 3 for f in json.loads(v.stdout)["findings"])


def test_export_writes_json_lines_and_csv(tmp_path: Path) -> None:
    """The CLI exports every record as JSON lines or CSV, and records that it did."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    r = cli("audit", "export", "--format", "jsonl", config=cfg)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[0]["id"] == 1 and {"task.create", "task.finish"} <= {x["action"] for x in rows}
    out = tmp_path / "a.csv"
    assert cli("audit", "export", "--format", "csv", "--out", str(out), config=cfg).returncode == 0
    assert out.read_text().startswith("id,at,actor,source,client,action")
    s = cli("audit", "search", "--action", "audit.export", "--output", "json", config=cfg)
    assert json.loads(s.stdout)["total"] == 2


@pytest.mark.postgres
def test_the_chain_and_its_verification_work_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """On PostgreSQL too, runs leave chained records that verify, and an edit is named."""
    import subprocess

    cfg = write_config(tmp_path, database=f"database:\n  driver: postgres\n  source: {pg_url}\n")
    _seed(cfg)
    assert cli("audit", "verify", config=cfg).returncode == 0
    subprocess.run(["psql", pg_url, "-q", "-c",
                    "UPDATE audit_log SET target = 'x' WHERE id = 2"], check=True, capture_output=True)
    r = cli("audit", "verify", config=cfg)
    assert r.returncode == 1 and "record 2 was edited" in r.stdout


def _rechain_from(cfg: Path, first: int, **edit: str) -> None:
    """What someone with write access to the database (and no audit key) can do: edit record ``first``,
    recompute the hash of it and of every later record, and move the head to the new last hash."""
    import asyncio
    import dataclasses

    from sqlalchemy import select, update

    from smallyi.audit.chain import link
    from smallyi.audit.trail import entry
    from smallyi.config import load_settings
    from smallyi.storage.db import open_database
    from smallyi.storage.models import AuditHead, AuditRecord

    async def go() -> None:
        db = await open_database(load_settings(str(cfg)))
        try:
            async with db.session.begin() as s:
                rows = (await s.scalars(select(AuditRecord).order_by(AuditRecord.id))).all()
                prev = next(r.hash for r in rows if r.id == first - 1) if first > 1 else "0" * 64
                for r in rows:
                    if r.id < first:
                        continue
                    e = dataclasses.replace(entry(r), prev_hash=prev, **(edit if r.id == first else {}))
                    h = link(prev, e)
                    await s.execute(update(AuditRecord).where(AuditRecord.id == r.id).values(
                        prev_hash=prev, hash=h, **(edit if r.id == first else {})))
                    prev = h
                await s.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
        finally:
            await db.close()

    asyncio.run(go())


def test_a_rewritten_and_rechained_database_fails_on_its_macs(tmp_path: Path) -> None:
    """Editing a record and recomputing every later hash and the head (a consistent chain) is caught: each
    rewritten record's MAC, and the head's, no longer match, since the audit key is not in the database; the
    newest record is not the one the anchor holds; the edited task.create no longer matches its task."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    ok = cli("audit", "verify", config=cfg)
    assert ok.returncode == 0 and "records carry a valid MAC" in ok.stdout, ok.stdout + ok.stderr
    _rechain_from(cfg, 3, actor="someone-else")
    r = cli("audit", "verify", "--output", "json", config=cfg)
    assert r.returncode == 1, r.stdout
    findings = json.loads(r.stdout)["findings"]
    assert {f["kind"] for f in findings} == {"forged", "rewritten", "mismatch"}
    assert {f["kind"] for f in findings if f["first"]} == {"forged", "rewritten"}  # the chain is consistent now
    assert [f["subject"] for f in findings if f["kind"] == "mismatch"] == ["task 2"]
    assert findings[0]["first"] == 3 and "someone-else" in findings[0]["message"]
    assert "MAC does not match" in findings[0]["message"] and any("head row" in f["message"] for f in findings)
    text = cli("audit", "verify", config=cfg)
    assert text.returncode == 1 and "TAMPERED record 3" in text.stdout


def test_records_written_before_macs_still_verify_and_stay_protected(tmp_path: Path) -> None:
    """A trail from before the upgrade (records without a MAC, mac_from past them, as the migration leaves
    it, and no anchor yet) does not pass as intact, and says why; once a record is written after it, it
    verifies; records written after carry MACs; re-chaining over the old records is caught."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    with _db(cfg) as db:  # the state migration 0006 leaves a database written by the earlier version in
        db.execute("UPDATE audit_log SET mac_version = 0, mac_key = '', mac = ''")
        db.execute("UPDATE audit_head SET mac_from = seq + 1, mac_key = '', mac = ''")
        old = db.execute("SELECT max(id) FROM audit_log").fetchone()[0]
    (tmp_path / "data" / "audit.anchor").unlink()  # that version wrote no anchor
    r = cli("audit", "verify", "--output", "json", config=cfg)
    rep = json.loads(r.stdout)
    assert r.returncode == 1 and rep["legacy"] == old and rep["authenticated"] == 0 and rep["mac_from"] == old + 1
    assert {f["kind"] for f in rep["findings"]} == {"boundary", "unanchored"}, rep["findings"]
    assert any("written nothing since it began to MAC records" in f["message"] for f in rep["findings"])
    _seed(cfg)
    r = cli("audit", "verify", config=cfg)
    assert r.returncode == 0 and f"{old} records (ids below {old + 1}) were written before MACs" in r.stdout, r.stdout
    _rechain_from(cfg, 2, actor="someone-else")
    bad = cli("audit", "verify", "--output", "json", config=cfg)
    assert bad.returncode == 1
    assert any(f["kind"] == "forged" and f["first"] == old + 1 for f in json.loads(bad.stdout)["findings"])


def test_stripping_the_macs_of_new_records_is_named(tmp_path: Path) -> None:
    """Blanking the MAC of records written after the upgrade does not pass them off as old ones."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    with _db(cfg) as db:
        db.execute("UPDATE audit_log SET mac_version = 0, mac = '' WHERE id >= 2")
    r = cli("audit", "verify", "--output", "json", config=cfg)
    assert r.returncode == 1
    assert any("carries no MAC" in f["message"] and f["first"] == 2 for f in json.loads(r.stdout)["findings"])


def test_records_cut_from_the_end_stay_visible_after_new_records(tmp_path: Path) -> None:
    """Deleting the newest records and moving the head row back to the last one left (no audit key) is
    caught by the head's MAC — and writing more records afterwards does not sign the moved head again
    (which would launder the deletion); a purge refuses to sign over it."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    with _db(cfg) as db:
        top = db.execute("SELECT max(id) FROM audit_log").fetchone()[0]
        keep, keep_hash = db.execute("SELECT id, hash FROM audit_log WHERE id = ?", (top - 2,)).fetchone()
        db.execute("DELETE FROM audit_log WHERE id > ?", (keep,))
        db.execute("UPDATE audit_head SET seq = ?, hash = ?", (keep, keep_hash))
    _seed(cfg)  # the trail goes on: new records take the freed ids
    r = cli("audit", "verify", "--output", "json", config=cfg)
    assert r.returncode == 1, r.stdout
    findings = json.loads(r.stdout)["findings"]
    kinds = [f["kind"] for f in findings]
    # the head's MAC; the record the anchor vouches for, now another; the task whose task.create was cut
    assert sorted(kinds) == ["forged", "rewritten", "unrecorded"], findings
    assert "head row" in findings[kinds.index("forged")]["message"]
    assert findings[kinds.index("rewritten")]["first"] == top
    purge = cli("audit", "purge", "--older-than-days", "1", config=cfg)
    assert purge.returncode != 0 and "head row" in purge.stderr + purge.stdout
    assert cli("audit", "verify", config=cfg).returncode == 1  # still named, after the refused purge's record


def test_an_untouched_head_is_signed_again_with_each_record(tmp_path: Path) -> None:
    """The other side: on an honest trail every new record moves a signed head and verify stays green."""
    cfg = write_config(tmp_path)
    _seed(cfg)
    _seed(cfg)
    with _db(cfg) as db:
        mac = db.execute("SELECT mac FROM audit_head").fetchone()[0]
    assert mac and cli("audit", "verify", config=cfg).returncode == 0
