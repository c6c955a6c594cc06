"""Audit records as JSON lines or CSV, one line at a time (an export never holds the whole trail)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from smallyi.audit.chain import Entry

COLUMNS = ("id", "at", "actor", "source", "client", "action", "target", "result", "perm", "detail",
           "prev_hash", "hash", "mac_version", "mac_key", "mac")


def jsonl(entries: Iterable[Entry]) -> Iterator[str]:
    for e in entries:
        yield json.dumps(e.to_dict(), ensure_ascii=False, default=str) + "\n"


def _safe_cell(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: quote them (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_rows(entries: Iterable[Entry]) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    yield buf.getvalue()
    for e in entries:
        buf.seek(0)
        buf.truncate()
        d = e.to_dict()
        d["detail"] = json.dumps(e.detail, ensure_ascii=False, sort_keys=True, default=str)
        w.writerow([_safe_cell(str(d[c])) for c in COLUMNS])
        yield buf.getvalue()
