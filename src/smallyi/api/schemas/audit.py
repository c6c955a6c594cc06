"""What the ``/audit`` JSON routes answer: records and the chain's verification report."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from smallyi.api.schemas import Answer


class AuditRecordOut(Answer):
    """One audit record as stored, with the hashes and MAC that chain it."""

    id: int
    at: str
    actor: str
    source: str = Field(description="where it came from: api, cli, server (on its own), system")
    client: str = Field(description="the caller's address, when known")
    action: str = Field(description="task.create, auth.login ...")
    target: str
    result: str = Field(description="ok, denied, failed, refused ...")
    perm: str = Field(description="the permission used; empty for none")
    detail: dict[str, Any]
    prev_hash: str
    hash: str
    mac_version: int = Field(description="0: no MAC (written before MACs), 1: HMAC-SHA256")
    mac_key: str = Field(description="the id of the audit key the MAC was made with")
    mac: str


class AnchorOut(Answer):
    """The external anchor the trail was held against."""

    file: str = Field(description="where the anchor is kept")
    seq: int | None = Field(description="the anchored record's id; none: no anchor found there")
    hash: str | None
    at: str | None = Field(description="when the anchor was written")
    matched: bool


class CrosscheckOut(Answer):
    """Task and terminal session rows held against their audit records."""

    tasks: int
    sessions: int
    before_trail: int = Field(description="rows older than the trail, not checked")


class ChainFindingOut(Answer):
    first: int
    last: int
    kind: str = Field(description="edited, deleted, forged, unverifiable; against the anchor: truncated, rewritten, "
                                  "boundary, unanchored, stale; rows: unrecorded, mismatch, vanished")
    message: str
    subject: str = Field(default="", description='what a row finding concerns ("task 17"); absent for records')


class VerifyOut(Answer):
    ok: bool = Field(description="no findings")
    checked: int
    last_id: int
    head_hash: str
    authenticated: int = Field(description="records whose MAC matched")
    legacy: int = Field(description="records from before MACs, covered by the chain only")
    mac_from: int = Field(description="the first record id that must carry a MAC")
    anchor: AnchorOut | None = Field(description="none: no external anchor is configured")
    crosscheck: CrosscheckOut
    findings: list[ChainFindingOut]
