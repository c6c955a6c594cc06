"""The audit trail over HTTP: search, export (JSON lines or CSV) and chain verification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import islice
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from smallyi.api.deps import Paging, State, listing
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import Page
from smallyi.api.schemas.audit import AuditRecordOut, VerifyOut
from smallyi.audit.chain import Entry
from smallyi.audit.export import csv_rows, jsonl
from smallyi.audit.trail import AuditFilter
from smallyi.tasks.queries import parse_window

router = APIRouter(prefix="/audit", tags=["audit"])


def _filter(actor: str | None, action: str | None, target: str | None, result: str | None,
            since: str | None, until: str | None) -> AuditFilter:
    since_at, until_at = parse_window(since, until)
    return AuditFilter(actor=actor or None, action=action or None, target=target or None, result=result or None,
                       since=since_at, until=until_at)


@router.get("", response_model=Page[AuditRecordOut], dependencies=[needs(Perm.AUDIT_READ)])
async def search(
    state: State, page: Paging, actor: str | None = None,
    action: Annotated[str | None, Query(description="prefix: task. matches task.create, task.finish")] = None,
    target: Annotated[str | None, Query(description="a part of the target")] = None,
    result: str | None = None,
    since: Annotated[str | None, Query(description="1h (ago), or 2026-11-20T10:00:00Z")] = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Audit records, newest first: who did what, when, from where, with what result."""
    rows, total = await state.audit.search(_filter(actor, action, target, result, since, until),
                                           limit=page.limit, offset=page.offset)
    return listing([e.to_dict() for e in rows], total)


@router.get("/export", dependencies=[needs(Perm.AUDIT_EXPORT)], response_class=StreamingResponse)
async def export(
    state: State, format: Literal["jsonl", "csv"] = "jsonl", actor: str | None = None,
    action: str | None = None, target: str | None = None, result: str | None = None,
    since: str | None = None, until: str | None = None,
) -> StreamingResponse:
    """Every matching record, oldest first, as JSON lines or CSV (with the hashes, to verify offline)."""
    f = _filter(actor, action, target, result, since, until)

    def encode(batch: list[Entry]) -> bytes:
        lines = jsonl(batch) if format == "jsonl" else islice(csv_rows(batch), 1, None)
        return "".join(lines).encode()

    async def body() -> AsyncIterator[bytes]:
        if format == "csv":
            yield next(csv_rows([])).encode()
        batch: list[Entry] = []
        async for e in state.audit.stream(f):
            batch.append(e)
            if len(batch) >= 500:
                yield encode(batch)
                batch = []
        if batch:
            yield encode(batch)

    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    return StreamingResponse(body(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="small-yi-audit.{format}"'})


@router.get("/verify", response_model=VerifyOut, response_model_exclude_unset=True, dependencies=[needs(Perm.AUDIT_READ)])
async def verify(state: State) -> dict[str, Any]:
    """Check the hash chain and the MACs against the external anchor, and the task and terminal session rows
    against their records; ``findings`` names every record edited, deleted or forged since it was written and
    every row without its record; ``authenticated`` counts records whose MAC matched, ``legacy`` those from
    before MACs; ``anchor`` names the anchor checked against (file, record id, when it was written)."""
    return (await state.audit.verify()).to_dict()
