"""The hash chain, pure: a record's canonical bytes, its hash, and verification of a sequence.

Each record's hash is SHA-256 over the previous record's hash and the record's canonical JSON, so
editing a record breaks its own hash, and deleting one breaks the sequence of ids and the link of
the next record. Verification streams: it holds one record at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "at": self.at.isoformat(), "actor": self.actor, "source": self.source,
            "client": self.client, "action": self.action, "target": self.target, "result": self.result,
            "perm": self.perm, "detail": self.detail, "prev_hash": self.prev_hash, "hash": self.hash,
        }


def canonical(e: Entry) -> bytes:
    """The bytes the hash covers: every field but the hashes, as sorted compact JSON."""
    body = e.to_dict()
    del body["prev_hash"], body["hash"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def link(prev_hash: str, e: Entry) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(e)).hexdigest()


@dataclass(frozen=True, slots=True)
class Finding:
    """One break in the chain: the record(s) it concerns and what happened to them."""

    first: int
    last: int
    kind: str  # "edited", "deleted", "relinked"
    message: str


@dataclass
class Report:
    checked: int = 0
    last_id: int = 0
    last_hash: str = GENESIS
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _describe(e: Entry) -> str:
    return f"{e.action} by {e.actor or '-'} at {e.at.isoformat(timespec='seconds')}"


class Verifier:
    """Feed records in ascending id order (after the purge anchor), then :meth:`finish` with the head."""

    def __init__(self, *, anchor_id: int, anchor_hash: str) -> None:
        self.report = Report(last_id=anchor_id, last_hash=anchor_hash)
        self._next_id, self._prev = anchor_id + 1, anchor_hash

    def feed(self, e: Entry) -> None:
        rep = self.report
        rep.checked += 1
        if e.id > self._next_id:
            first, last = self._next_id, e.id - 1
            span = f"record {first}" if first == last else f"records {first} to {last}"
            rep.findings.append(Finding(first, last, "deleted", f"{span} deleted (the ids jump from "
                                        f"{first - 1} to {e.id})"))
        elif e.prev_hash != self._prev:
            rep.findings.append(Finding(e.id - 1, e.id - 1, "edited", (
                f"record {e.id - 1} was edited or replaced: record {e.id} ({_describe(e)}) links to a "
                "different hash than it now has")))
        if link(e.prev_hash, e) != e.hash:
            rep.findings.append(Finding(e.id, e.id, "edited", (
                f"record {e.id} was edited: its content ({_describe(e)}) does not match its hash")))
        self._next_id, self._prev = e.id + 1, e.hash
        rep.last_id, rep.last_hash = e.id, e.hash

    def finish(self, *, head_id: int, head_hash: str) -> Report:
        rep = self.report
        if head_id > rep.last_id:
            first = rep.last_id + 1
            span = f"record {first}" if first == head_id else f"records {first} to {head_id}"
            rep.findings.append(Finding(first, head_id, "deleted", f"{span} deleted from the end of the trail"))
        elif head_id == rep.last_id and head_hash != rep.last_hash and rep.checked:
            rep.findings.append(Finding(head_id, head_id, "edited",
                                        f"record {head_id} was replaced: the trail's head recorded another hash"))
        return rep


def verify(entries: Iterable[Entry], *, anchor_id: int, anchor_hash: str, head_id: int, head_hash: str) -> Report:
    """Check ``entries`` (ascending ids, starting after the purge anchor) against each other and the head."""
    v = Verifier(anchor_id=anchor_id, anchor_hash=anchor_hash)
    for e in entries:
        v.feed(e)
    return v.finish(head_id=head_id, head_hash=head_hash)
