"""Live output through the server: line latency to a WebSocket viewer, and a 100 MB flood."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

import httpx
import websockets

from bench.context import Context, shown, sy_server_argv, sy_summary
from bench.proc import RssSampler, Stat, percentile, rss_mb, run_timed
from bench.report import Row


async def _watch(url: str, token: str, body: dict[str, object]) -> tuple[list[float], dict[str, object], float]:
    """Submit ``body``, follow its stream; every stdout line is a ``date +%s.%N`` compared on arrival."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        r = await c.post("/api/v1/tasks", json=body)
        r.raise_for_status()
        task_id = r.json()["id"]
    lat: list[float] = []
    t0 = time.perf_counter()
    end: dict[str, object] = {}
    ws_url = "ws:" + url.split(":", 1)[1] + f"/api/v1/tasks/{task_id}/stream?after=0"
    async with websockets.connect(ws_url, subprotocols=[websockets.Subprotocol(f"bearer.{token}")],
                                  max_size=None) as ws:
        connected = time.time()
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            if msg["type"] == "end":
                end = msg["task"]
                break
            for e in msg["events"]:
                if e["stream"] == "stdout":
                    with contextlib.suppress(ValueError):
                        printed = float(e["text"])
                        # a line printed before the viewer was connected is replayed, not live
                        lat.append(now - printed if printed >= connected else float("nan"))
    return lat, end, time.perf_counter() - t0

REPO = Path(__file__).resolve().parents[2]


def latency(ctx: Context) -> None:
    """Hosts print ``date +%s.%N`` during a 500-host task; the viewer compares with its clock (same machine)."""
    n, k = ctx.opts.n, ctx.opts.latency_lines
    group = ctx.ws.group(n)
    srv = ctx.ensure_server()
    # $EPOCHREALTIME is bash's clock (no fork per line: 500 hosts share these two cores)
    cmd = f"sleep 2; for i in $(seq {k}); do echo $EPOCHREALTIME; sleep 0.5; done"
    body: dict[str, object] = {"target": {"group": group}, "cmd": cmd, "concurrency": n, "timeout": "2m"}
    run_timed(sy_server_argv(srv, group, n), cwd=ctx.ws.dir)  # the pool is open: latency, not handshakes
    sub = ctx.fleet.subset(n)
    floor_argv = [sys.executable, str(Path(__file__).resolve().parents[1] / "latency_floor.py"), str(sub), cmd]
    floor_lat: list[float] = []
    all_lat: list[float] = []
    oks: list[int] = []
    early = 0
    for _ in range(max(1, ctx.opts.rounds)):
        got, end, _took = asyncio.run(_watch(srv.url, srv.token, body))
        counts = end.get("counts") or {}
        oks.append(int(counts.get("success", 0)) if isinstance(counts, dict) else 0)
        lat = [x for x in got if x == x]
        early += len(got) - len(lat)
        all_lat += lat
        print(f"    latency round: {len(lat)} lines, p50 {percentile(lat, 50) * 1000:.1f} ms, "
              f"p99 {percentile(lat, 99) * 1000:.1f} ms; task {end.get('status')} {counts}", flush=True)
        # the same lines read by raw asyncssh in one process: what the fleet and this machine allow
        t = run_timed(floor_argv, cwd=ctx.ws.dir, timeout=300)
        try:
            got_floor = [float(x) for x in json.loads(t.out.strip().splitlines()[-1])]
        except (ValueError, IndexError):
            print(f"    latency floor round failed (exit {t.rc}): {t.err.strip()[-500:]}", flush=True)
            continue
        floor_lat += got_floor
        if got_floor:
            print(f"    latency floor round: {len(got_floor)} lines, p50 {percentile(got_floor, 50) * 1000:.1f} ms, "
                  f"p99 {percentile(got_floor, 99) * 1000:.1f} ms", flush=True)
    if not all_lat:
        ctx.report.bar(f"live latency, N={n}", "p99 <= 100 ms (aim)", "no line reached the viewer", False)
        return
    scen = f"live latency, N={n}"
    p50, p99 = percentile(all_lat, 50) * 1000, percentile(all_lat, 99) * 1000
    ctx.report.add(Row(scen, "host line -> WebSocket viewer", n, f"{min(oks)}/{n}", None, None, "",
                       f"{len(all_lat)} lines: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(all_lat) * 1000:.1f} ms"
                       + (f" ({early} lines printed before the viewer connected left out)" if early else "")))
    if floor_lat:
        f50, f99 = percentile(floor_lat, 50) * 1000, percentile(floor_lat, 99) * 1000
        ctx.report.add(Row(scen, "raw asyncssh reading the same lines (floor)", n, "", None, None, "",
                           f"{len(floor_lat)} lines: p50 {f50:.1f} ms, p99 {f99:.1f} ms, "
                           f"max {max(floor_lat) * 1000:.1f} ms; one process, connections open, no server"))
    ctx.report.bar(scen, "p99 <= 100 ms (aim); p50 reported",
                   f"p50 {p50:.1f} ms, p99 {p99:.1f} ms" + (f" (raw asyncssh floor: p50 {f50:.1f}, p99 {f99:.1f} ms)"
                                                            if floor_lat else ""), p99 <= 100)
    ctx.report.commands["live latency"] = (f"POST /api/v1/tasks {{\"target\": {{\"group\": \"{group}\"}}, \"cmd\": \"{cmd}\", "
                                           f"\"concurrency\": {n}}} then GET /api/v1/tasks/ID/stream (WebSocket)")
    ctx.report.commands["live latency: floor"] = shown(
        floor_argv, {str(sub): "SUB", sys.executable: ".venv/bin/python", f"{REPO}/": ""}) + "   # after each viewer round"


def flood(ctx: Context) -> None:
    """One host prints ``flood_mb`` MB (1 M lines of 100 bytes per 100 MB); the server's RSS is sampled."""
    mb = ctx.opts.flood_mb
    group = ctx.ws.group(1)
    srv = ctx.ensure_server()
    cmd = f"yes {'x' * 98} | head -c {mb * 1_000_000}"
    argv = sy_server_argv(srv, group, 1, cmd, "--quiet", "--timeout", "10m")
    growths, rates, walls, cpus, oks = [], [], [], [], []
    for _ in range(max(1, min(ctx.opts.rounds, 2))):
        base = rss_mb(srv.pid)
        with RssSampler(srv.pid) as s:
            t = run_timed(argv, cwd=ctx.ws.dir, timeout=900)
        ok, dur = sy_summary(t)
        oks.append(ok)
        growths.append(s.peak - base)
        rates.append(mb / dur if dur == dur and dur > 0 else float("nan"))
        walls.append(t.wall)
        cpus.append(t.cpu)
        print(f"    flood: ok {ok}, task {dur:.2f}s, server RSS {base:.0f} -> peak {s.peak:.0f} MB, "
              f"CLI wall {t.wall:.2f}s cpu {t.cpu:.2f}s rss {t.rss_mb:.0f} MB", flush=True)
    scen = f"output flood, {mb} MB"
    g, r = Stat.of(growths), Stat.of(rates)
    ctx.report.add(Row(scen, "small-yi run --server --quiet (1 host)", 1, f"{min(oks)}/1", Stat.of(walls), Stat.of(cpus),
                       "", f"{r.fmt(1)} MB/s through the pipeline; server RSS +{g.fmt(1)} MB"))
    ctx.report.bar(scen, "server RSS grows <= 50 MB; MB/s reported", f"+{g.median:.1f} MB (max +{g.hi:.1f}); {r.median:.1f} MB/s",
                   g.hi <= 50 and min(oks) == 1)
    ctx.report.commands["output flood"] = shown(argv, {srv.url: "$URL", f"{REPO}/": ""})
