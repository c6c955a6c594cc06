"""The hash chain, pure: a record's canonical bytes, its hash, its MAC, and verification of a sequence.

Each record's hash is SHA-256 over the previous record's hash and the record's canonical JSON, so
editing a record breaks its own hash, and deleting one breaks the sequence of ids and the link of
the next record. Anyone who can write the database can recompute those hashes, so each record
also carries an HMAC-SHA256 of its id and hash (``mac_version`` 1) under the audit key, which is
not in the database: a re-chained trail no longer matches its MACs. Records written before MACs
existed (``mac_version`` 0, ids below the head's ``mac_from``) are covered by the chain only, and
through it by the first MAC'd record after them, whose MAC covers its link to them. The head row
carries a MAC too (over its id, hash, purge anchor and ``mac_from``), so none of those can be moved
unnoticed. Verification streams: it holds one record at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smallyi.audit.anchor import Anchor

from smallyi.timestamps import iso, iso_seconds

GENESIS = "0" * 64
#: no MAC: written before MACs existed
MAC_NONE = 0
#: HMAC-SHA256(key, "small-yi audit v1\n<id>\n<hash>")
MAC_V1 = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit record as stored (``hash`` and ``prev_hash`` included)."""

    id: int
    at: datetime
    actor: str
    source: str
    client: str
    action: str
    target: str
    result: str
    perm: str
    detail: dict[str, Any]
    prev_hash: str = ""
    hash: str = ""
    mac_version: int = MAC_NONE
    #: the id of the audit key the MAC was made with
    mac_key: str = ""
    mac: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The record as the API, the exports and the CLI give it (``at`` as every timestamp: UTC, ``Z``)."""
        return {
            "id": self.id, "at": iso(self.at), "actor": self.actor, "source": self.source,
            "client": self.client, "action": self.action, "target": self.target, "result": self.result,
            "perm": self.perm, "detail": self.detail, "prev_hash": self.prev_hash, "hash": self.hash,
            "mac_version": self.mac_version, "mac_key": self.mac_key, "mac": self.mac,
        }


def canonical(e: Entry) -> bytes:
    """The bytes the hash covers: every field but the hashes and the MAC, as sorted compact JSON, with
    ``at`` written as the chain has always hashed it (``2026-11-20T10:00:00+00:00``), not as shown."""
    body = e.to_dict()
    for name in ("prev_hash", "hash", "mac_version", "mac_key", "mac"):
        del body[name]
    body["at"] = e.at.isoformat()
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def link(prev_hash: str, e: Entry) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(e)).hexdigest()


@dataclass(frozen=True, slots=True)
class HeadState:
    """The chain's head row: last id and hash, the purge anchor, the first id that must carry a MAC."""

    seq: int
    hash: str
    anchor_seq: int
    anchor_hash: str
    mac_from: int
    mac_key: str = ""
    mac: str = ""


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The audit MAC keys by id (``current`` signs; older ones still verify what they signed)."""

    keys: Mapping[str, bytes]
    current: str

    def _mac(self, key_id: str, text: str) -> str | None:
        key = self.keys.get(key_id)
        if key is None:
            return None
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _record_text(record_id: int, record_hash: str) -> str:
        return f"small-yi audit v1\n{record_id}\n{record_hash}"

    @staticmethod
    def _head_text(h: HeadState) -> str:
        return f"small-yi audit head v1\n{h.seq}\n{h.hash}\n{h.anchor_seq}\n{h.anchor_hash}\n{h.mac_from}"

    def sign(self, record_id: int, record_hash: str) -> str:
        out = self._mac(self.current, self._record_text(record_id, record_hash))
        assert out is not None
        return out

    def sign_head(self, h: HeadState) -> str:
        out = self._mac(self.current, self._head_text(h))
        assert out is not None
        return out

    def sign_text(self, text: str) -> str:
        """A MAC of ``text`` (which names what it is, e.g. the external anchor's) with the current key."""
        out = self._mac(self.current, text)
        assert out is not None
        return out

    def check_text(self, key_id: str, text: str, mac: str) -> bool | None:
        want = self._mac(key_id, text)
        return None if want is None else hmac.compare_digest(want, mac)

    def check(self, e: Entry) -> bool | None:
        """True/False: the record's MAC matches or not; None: its key is not among ours."""
        want = self._mac(e.mac_key, self._record_text(e.id, e.hash))
        return None if want is None else hmac.compare_digest(want, e.mac)

    def check_head(self, h: HeadState) -> bool | None:
        want = self._mac(h.mac_key, self._head_text(h))
        return None if want is None else hmac.compare_digest(want, h.mac)


@dataclass(frozen=True, slots=True)
class Finding:
    """One break in the chain: the record(s) it concerns and what happened to them."""

    first: int
    last: int
    #: "edited", "deleted", "forged" (MAC missing or wrong), "unverifiable" (unknown key); against the external
    #: anchor: "truncated", "rewritten", "boundary", "unanchored", "stale"; rows against records (first and
    #: last 0): "unrecorded", "mismatch", "vanished"
    kind: str
    message: str
    #: what a finding about a row concerns ("task 17", "session 3"); empty for records
    subject: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "kind": self.kind, "message": self.message,
                **({"subject": self.subject} if self.subject else {})}


@dataclass
class Report:
    checked: int = 0
    last_id: int = 0
    last_hash: str = GENESIS
    findings: list[Finding] = field(default_factory=list)
    #: records whose MAC was checked and matched
    authenticated: int = 0
    #: records from before MACs existed (ids below ``mac_from``): covered by the chain only
    legacy: int = 0
    mac_from: int = 1
    #: the external anchor checked against (None: none found), where it is kept, whether its record matched
    anchor: Anchor | None = None
    anchor_file: str = ""
    anchor_matched: bool = False
    #: rows held against their records (``crosscheck``): how many, and how many predate the trail
    tasks_checked: int = 0
    sessions_checked: int = 0
    rows_before_trail: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """The report as ``audit verify --output json`` and ``GET /api/v1/audit/verify`` give it."""
        a = self.anchor
        return {
            "ok": self.ok, "checked": self.checked, "last_id": self.last_id, "head_hash": self.last_hash,
            "authenticated": self.authenticated, "legacy": self.legacy, "mac_from": self.mac_from,
            "anchor": {"file": self.anchor_file, "seq": a.seq if a else None, "hash": a.hash if a else None,
                       "at": a.at if a else None, "matched": self.anchor_matched} if self.anchor_file else None,
            "crosscheck": {"tasks": self.tasks_checked, "sessions": self.sessions_checked,
                           "before_trail": self.rows_before_trail},
            "findings": [f.to_dict() for f in self.findings],
        }


def _describe(e: Entry) -> str:
    return f"{e.action} by {e.actor or '-'} at {iso_seconds(e.at)}"


def _span(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first} to {last}"


class Verifier:
    """Feed records in ascending id order (after the purge anchor), then :meth:`finish` with the head.

    With ``keys``, every record from ``mac_from`` on must carry a matching MAC; without, only the chain
    is checked. With ``anchor_file`` (where the external anchor is kept), the trail is also held against
    ``external``, the anchor read from it (None: there is none): it must still reach the anchored record,
    hold that very record (hash and MAC), and keep the anchored ``mac_from``.
    """

    def __init__(self, *, anchor_id: int, anchor_hash: str, keys: AuditKeys | None = None,
                 mac_from: int = 1, external: Anchor | None = None, anchor_file: str | None = None) -> None:
        self.report = Report(last_id=anchor_id, last_hash=anchor_hash, mac_from=mac_from, anchor=external,
                             anchor_file=anchor_file or "")
        self._next_id, self._prev = anchor_id + 1, anchor_hash
        self._purge_anchor = (anchor_id, anchor_hash)
        self._keys = keys
        self._macd = False  # some record claims a MAC
        self._external = external if anchor_file is not None else None
        self._anchored = anchor_file is not None
        self._seen_external = False

    def _check_mac(self, e: Entry) -> None:
        rep = self.report
        if self._keys is None:
            return  # the chain alone (an offline check without the key)
        if e.mac_version == MAC_NONE:
            if e.id < rep.mac_from:
                rep.legacy += 1
                return
            rep.findings.append(Finding(e.id, e.id, "forged", (
                f"record {e.id} ({_describe(e)}) carries no MAC, though every record from {rep.mac_from} on "
                "must: it was written or rewritten by someone without the audit key")))
            return
        self._macd = True
        if e.mac_version != MAC_V1:
            rep.findings.append(Finding(e.id, e.id, "forged",
                                        f"record {e.id} claims an unknown MAC version {e.mac_version}"))
            return
        ok = self._keys.check(e)
        if ok:
            rep.authenticated += 1
            return
        self._bad_signature(e.id, ok, unknown_key=(
            f"record {e.id} was signed with audit key {e.mac_key or '(none)'}, which is not in the audit key "
            "file: restore that key (keep old keys below the current one) to check it"), forged=(
            f"record {e.id} ({_describe(e)}): its MAC does not match: it was edited, or the chain was "
            "recomputed, by someone without the audit key"))

    def _bad_signature(self, seq: int, ok: bool | None, *, unknown_key: str, forged: str) -> None:
        """A MAC check that failed: ``ok`` None, signed with a key the key file lacks (say ``unknown_key``);
        False, it does not match (say ``forged``)."""
        kind, message = ("unverifiable", unknown_key) if ok is None else ("forged", forged)
        self.report.findings.append(Finding(seq, seq, kind, message))

    def feed(self, e: Entry) -> None:
        rep = self.report
        rep.checked += 1
        if e.id > self._next_id:
            first, last = self._next_id, e.id - 1
            rep.findings.append(Finding(first, last, "deleted", f"{_span(first, last)} deleted (the ids jump from "
                                        f"{first - 1} to {e.id})"))
        elif e.prev_hash != self._prev:
            rep.findings.append(Finding(e.id - 1, e.id - 1, "edited", (
                f"record {e.id - 1} was edited or replaced: record {e.id} ({_describe(e)}) links to a "
                "different hash than it now has")))
        if link(e.prev_hash, e) != e.hash:
            rep.findings.append(Finding(e.id, e.id, "edited", (
                f"record {e.id} was edited: its content ({_describe(e)}) does not match its hash")))
        self._check_mac(e)
        if self._external is not None and e.id == self._external.seq:
            self._hold_against_anchor(e, self._external)
        self._next_id, self._prev = e.id + 1, e.hash
        rep.last_id, rep.last_hash = e.id, e.hash

    def _where(self, a: Anchor) -> str:
        return f"the anchor in {self.report.anchor_file} (written {a.at})"

    def _hold_against_anchor(self, e: Entry, a: Anchor) -> None:
        rep = self.report
        self._seen_external = True
        if e.hash != a.hash:
            rep.findings.append(Finding(e.id, e.id, "rewritten", (
                f"record {e.id} ({_describe(e)}) is not the record {self._where(a)} vouches for (hash "
                f"{e.hash[:12]}..., anchored {a.hash[:12]}...): the trail was cut back and written again from "
                "there, or rewritten")))
        elif e.mac != a.mac:
            rep.findings.append(Finding(e.id, e.id, "forged", (
                f"record {e.id} ({_describe(e)}) no longer carries the MAC {self._where(a)} holds for it: its MAC "
                "was stripped or replaced")))
        else:
            rep.anchor_matched = True

    def _finish_external(self, head: HeadState | None) -> None:
        rep, a = self.report, self._external
        if a is None:
            if rep.checked or (head is not None and head.seq > head.anchor_seq):
                rep.findings.append(Finding(0, 0, "unanchored", (
                    f"there is no anchor at {rep.anchor_file}: nothing outside the database vouches for the trail's "
                    "end, so records cut from it would not show. small-yi writes it with each record; if it was "
                    "deleted or never written (an upgrade), it is written again with the next record")))
            return
        if self._keys is not None:
            ok = a.check(self._keys)
            if not ok:
                self._bad_signature(a.seq, ok, unknown_key=(
                    f"{self._where(a)} is signed with audit key {a.key or '(none)'}, which is not in the audit key "
                    "file: restore that key to check it"), forged=(
                    f"{self._where(a)} does not match its signature: it was edited by someone without the audit "
                    "key"))
        if head is not None and head.mac_from != a.mac_from:
            rep.findings.append(Finding(head.mac_from, head.mac_from, "boundary", (
                f"the trail's head says records carry a MAC from id {head.mac_from} on, {self._where(a)} says "
                f"from {a.mac_from} on: the boundary was moved (to pass records with their MACs stripped off as "
                "ones written before MACs existed)")))
        if self._seen_external:
            return
        purged_id, purged_hash = self._purge_anchor
        if a.seq > rep.last_id:
            first = rep.last_id + 1
            rep.findings.append(Finding(first, a.seq, "truncated", (
                f"the trail ends at record {rep.last_id}, but {self._where(a)} vouches for record {a.seq}: "
                f"{_span(first, a.seq)} were cut from the end (and the head moved back)")))
        elif a.seq == purged_id and a.hash == purged_hash:
            rep.anchor_matched = True  # everything since is newer than the anchor: it checks the purge's link
        elif a.seq <= purged_id:
            rep.findings.append(Finding(a.seq, a.seq, "stale", (
                f"{self._where(a)} vouches for record {a.seq}, which the retention purge has deleted since: it has "
                "not moved for longer than the retention, so it checks nothing; is it being written?")))
        # else: the anchored record is gone from the middle, named above as deleted

    def finish(self, *, head_id: int, head_hash: str, head: HeadState | None = None) -> Report:
        rep = self.report
        if head is not None and self._keys is not None and (head.mac or head.seq >= head.mac_from or self._macd
                                                             or head.mac_from > head.seq + 1):
            # a signed head, or records written since MACs began: the head row must carry a matching MAC (only
            # right after the upgrade, before any new record, has it none; mac_from is then seq + 1)
            ok = self._keys.check_head(head) if head.mac else False
            if not ok:
                self._bad_signature(head.seq, ok, unknown_key=(
                    f"the trail's head row was signed with audit key {head.mac_key}, which is not in the audit key "
                    "file"), forged=(
                    "the trail's head row (last id, last hash, purge anchor, first MAC'd id) was changed by someone "
                    "without the audit key"))
        if head is not None and self._keys is not None and head.seq > head.anchor_seq and head.mac_from > head.seq:
            rep.findings.append(Finding(head.mac_from, head.mac_from, "boundary", (
                f"no record needs a MAC: the head says MACs begin at record {head.mac_from}, past the trail's end "
                f"({head.seq}). Either small-yi has written nothing since it began to MAC records (write one: log "
                "in or run a command, then verify again), or every MAC was stripped and the boundary moved past "
                "them; an anchor kept elsewhere tells which")))
        if head_id > rep.last_id:
            first = rep.last_id + 1
            rep.findings.append(Finding(first, head_id, "deleted", f"{_span(first, head_id)} deleted from the end of "
                                        "the trail"))
        elif head_id == rep.last_id and head_hash != rep.last_hash and rep.checked:
            rep.findings.append(Finding(head_id, head_id, "edited",
                                        f"record {head_id} was replaced: the trail's head recorded another hash"))
        if self._anchored:
            self._finish_external(head)
        return rep


def verify(entries: Iterable[Entry], *, anchor_id: int, anchor_hash: str, head_id: int, head_hash: str,
           keys: AuditKeys | None = None, head: HeadState | None = None, external: Anchor | None = None,
           anchor_file: str | None = None) -> Report:
    """Check ``entries`` (ascending ids, starting after the purge anchor) against each other, the head and,
    with ``anchor_file``, the external anchor read from it (``external``)."""
    v = Verifier(anchor_id=anchor_id, anchor_hash=anchor_hash, keys=keys, mac_from=head.mac_from if head else 1,
                 external=external, anchor_file=anchor_file)
    for e in entries:
        v.feed(e)
    return v.finish(head_id=head_id, head_hash=head_hash, head=head)
