"""A million archived host results, filtered by host + status + time range through the API.

The rows are bulk-loaded straight into the tables small-yi's own migrations created (executemany on
SQLite, COPY on PostgreSQL): loading is not what is measured, the API's answer time is. 1000 tasks x
1000 hosts over 30 days; 96% success, 2% failed, 1% timeout, 1% unreachable.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.context import Context
from bench.proc import percentile
from bench.report import Row
from bench.smallyi import Workspace

STATUSES = ["success"] * 96 + ["failed"] * 2 + ["timeout", "unreachable"]
DAYS = 30


def _shape(rows: int) -> tuple[int, int]:
    hosts = 1000 if rows >= 1000 else max(1, rows)
    return max(1, rows // hosts), hosts


def _task_rows(tasks: int, start: datetime) -> list[dict[str, Any]]:
    step = timedelta(days=DAYS) / max(1, tasks)
    out = []
    for i in range(tasks):
        at = start + step * i
        out.append({"id": i + 1, "kind": "command", "command": "uptime", "target": json.dumps({"group": "fleet"}),
                    "status": "success", "reason": "", "created_by": "bench", "runner": "bench:archive",
                    "cancel_requested": "", "created_at": at, "started_at": at, "finished_at": at + timedelta(seconds=9),
                    "timeout": 60.0, "concurrency": 200, "rate": 0.0, "host_count": 1000,
                    "counts": json.dumps({"success": 960}), "last_seq": 2000})
    return out


def _result_rows(tasks: int, hosts: int, start: datetime, seed: int = 4) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    step = timedelta(days=DAYS) / max(1, tasks)
    rid = 0
    for t in range(tasks):
        at = start + step * t
        for h in range(hosts):
            rid += 1
            status = rnd.choice(STATUSES)
            began = at + timedelta(milliseconds=rnd.randrange(5000))
            dur = rnd.random() * 2
            code = 0 if status == "success" else (1 if status == "failed" else None)
            yield {"id": rid, "task_id": t + 1, "host_name": f"host-{h + 1:04d}", "address": f"10.0.{h // 250}.{h % 250}",
                   "status": status, "reason": "" if status == "success" else f"{status} (bench)", "exit_code": code,
                   "started_at": began, "finished_at": began + timedelta(seconds=dur), "duration": dur,
                   "stdout": " 10:23:45 up 12 days,  3:01,  1 user,  load average: 0.12, 0.09, 0.05",
                   "stderr": "", "stdout_bytes": 70, "stderr_bytes": 0, "stdout_cut": 0, "stderr_cut": 0,
                   "output_digest": "ab" * 8, "full_log": None}


def _filler(sqltype: str) -> Any:
    t = sqltype.upper()
    if any(k in t for k in ("INT", "FLOAT", "REAL", "NUMERIC", "DOUBLE", "BOOL")):
        return 0
    if "JSON" in t:
        return "{}"
    return ""


def _sqlite_fmt(v: Any) -> Any:
    return v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v


def load_sqlite(path: str, rows: int) -> tuple[int, float]:
    """Bulk-load ``rows`` results (and their tasks) with executemany in one transaction."""
    t0 = time.perf_counter()
    tasks, hosts = _shape(rows)
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=DAYS)
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    for table, gen in (("tasks", iter(_task_rows(tasks, start))), ("results", _result_rows(tasks, hosts, start))):
        info = con.execute(f"PRAGMA table_info({table})").fetchall()
        first = next(gen)
        cols = [c[1] for c in info if c[1] in first or (c[3] and c[4] is None and not c[5])]
        extra = {c[1]: _filler(c[2]) for c in info if c[1] not in first}
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

        def tuples(first: dict[str, Any] = first, g: Iterator[dict[str, Any]] = gen,
                   cols: list[str] = cols, extra: dict[str, Any] = extra) -> Iterator[tuple[Any, ...]]:
            for row in _chain(first, g):
                yield tuple(_sqlite_fmt(row[c]) if c in row else extra[c] for c in cols)

        con.executemany(sql, tuples())
    con.commit()
    con.execute("ANALYZE")
    con.close()
    return tasks * hosts, time.perf_counter() - t0


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


async def _load_pg(url: str, rows: int) -> int:
    import asyncpg  # type: ignore[import-untyped]

    tasks, hosts = _shape(rows)
    start = datetime.now(UTC) - timedelta(days=DAYS)
    con = await asyncpg.connect(url)
    try:
        for table, gen in (("tasks", iter(_task_rows(tasks, start))), ("results", _result_rows(tasks, hosts, start))):
            info = await con.fetch("SELECT column_name, is_nullable, column_default, data_type FROM information_schema.columns "
                                   "WHERE table_name = $1", table)
            first = next(gen)
            cols = [r["column_name"] for r in info if r["column_name"] in first
                    or (r["is_nullable"] == "NO" and r["column_default"] is None)]
            extra = {r["column_name"]: _filler(r["data_type"]) for r in info if r["column_name"] not in first}
            records = (tuple(row[c] if c in row else extra[c] for c in cols) for row in _chain(first, gen))
            await con.copy_records_to_table(table, records=list(records), columns=cols)
        await con.execute("SELECT setval(pg_get_serial_sequence('tasks', 'id'), (SELECT max(id) FROM tasks))")
        await con.execute("SELECT setval(pg_get_serial_sequence('results', 'id'), (SELECT max(id) FROM results))")
        await con.execute("ANALYZE")
    finally:
        await con.close()
    return tasks * hosts


def _queries(srv_http: httpx.Client, count: int, hosts: int, seed: int = 7) -> tuple[list[float], int]:
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    lat: list[float] = []
    found = 0
    for i in range(count + 10):
        since = now - timedelta(days=rnd.uniform(1, DAYS))
        until = since + timedelta(days=rnd.uniform(1, 7))
        params = {"host": f"host-{rnd.randrange(hosts) + 1:04d}", "status": rnd.choice(["success", "failed", "timeout"]),
                  "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "until": until.strftime("%Y-%m-%dT%H:%M:%SZ")}
        t0 = time.perf_counter()
        r = srv_http.get("/api/v1/results", params=params)
        took = time.perf_counter() - t0
        r.raise_for_status()
        if i >= 10:  # the first ten warm the server's caches
            lat.append(took)
            found += r.json()["total"]
    return lat, found


def _measure(ctx: Context, ws: Workspace, label: str, rows: int, load_s: float) -> None:
    srv = ws.serve()
    try:
        with srv.http() as c:
            lat, found = _queries(c, ctx.opts.archive_queries, _shape(rows)[1])
    finally:
        srv.stop()
    p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
    scen = f"archive, {rows:,} results"
    ctx.report.add(Row(scen, f"GET /api/v1/results, {label}", 0, "", None, None, "",
                       f"{len(lat)} queries: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(lat) * 1000:.1f} ms; "
                       f"{found / max(1, len(lat)):.0f} matches/query; bulk load {load_s:.0f} s"))
    ctx.report.bar(scen, f"host + status + time range, p99 <= 50 ms on {label}", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                   p99 <= 50)


def sqlite(ctx: Context) -> None:
    ws = Workspace(ctx.opts.work / "archive-sqlite")
    if (ws.dir / "data").exists():
        subprocess.run(["rm", "-rf", str(ws.dir / "data")], check=True)
    ws.write_config()
    ws.run("db", "upgrade")
    t0 = time.perf_counter()
    rows, _ = load_sqlite(str(ws.dir / "data" / "small-yi.db"), ctx.opts.archive_rows)
    _measure(ctx, ws, "SQLite", rows, time.perf_counter() - t0)
    ctx.report.commands["archive query"] = ("GET /api/v1/results?host=host-0123&status=failed&since=2026-11-01T10:00:00Z"
                                            "&until=2026-11-05T10:00:00Z (300 random hosts, statuses, 1-7 day windows)")


def postgres(ctx: Context) -> None:
    name = f"smallyi_bench_{uuid.uuid4().hex[:8]}"
    psql = ["psql", f"{ctx.opts.postgres}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    r = subprocess.run([*psql, f"CREATE DATABASE {name}"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        ctx.report.bar(f"archive, {ctx.opts.archive_rows:,} results", "p99 <= 50 ms on PostgreSQL",
                       f"PostgreSQL not reachable: {r.stderr.strip()[:80]}", None)
        return
    try:
        url = f"{ctx.opts.postgres}/{name}"
        ws = Workspace(ctx.opts.work / "archive-pg", database=f"database:\n  driver: postgres\n  source: {url}\n")
        ws.write_config()
        ws.run("db", "upgrade")
        t0 = time.perf_counter()
        rows = asyncio.run(_load_pg(url, ctx.opts.archive_rows))
        _measure(ctx, ws, "PostgreSQL", rows, time.perf_counter() - t0)
    finally:
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True, check=False)
