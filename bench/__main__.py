"""``python -m bench``: bring up the bench fleet, run every scenario of issue 4, write docs/performance.md.

    python -m bench                         # everything (about 15-20 minutes on 2 cores)
    python -m bench --scenarios cold,warm   # some rows only (the page keeps only what ran)
    python -m bench --smoke                 # a tiny run: 5 hosts, one round, small archive; no page written
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import fleet as fleet_mod
from bench import peers
from bench.context import Context, Options
from bench.report import Report, now, write_page
from bench.scenarios import archive, fanout, live
from bench.smallyi import Workspace

REPO = Path(__file__).resolve().parents[1]
ALL = ["startup", "cold", "ansible", "warm", "latency", "flood", "big", "archive", "wan"]


def parse(argv: list[str]) -> tuple[Options, list[str], Path | None]:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default=",".join(ALL), help=f"comma-separated, from: {', '.join(ALL)}")
    p.add_argument("-n", type=int, help="hosts for the main rows (default 500)")
    p.add_argument("--big-n", type=int, help="hosts for the large rows (default 1000)")
    p.add_argument("--wan-n", type=int, help="hosts on the 20 ms RTT fleet (default 200)")
    p.add_argument("--rounds", type=int, help="rounds per tool (default 3; medians and min-max)")
    p.add_argument("--big-rounds", type=int, help="rounds at N=1000 (default 1)")
    p.add_argument("--ansible-rounds", type=int, help="rounds of ansible (default 1: about two minutes each)")
    p.add_argument("--archive-rows", type=int, help="archived results to load (default 1,000,000)")
    p.add_argument("--flood-mb", type=int, help="MB the flooding host prints (default 100)")
    p.add_argument("--work", type=Path, help="scratch folder (default /tmp/small-yi-bench)")
    p.add_argument("--port", type=int, help="the bench fleet's sshd port (default 2300; 0: a free one)")
    p.add_argument("--wan-port", type=int, help="the 20 ms fleet's delay-line port (default 2310; 0: a free one)")
    p.add_argument("--smoke", action="store_true", help="a tiny run proving the harness works; writes no page")
    p.add_argument("--out", type=Path, help="page to write (default docs/performance.md; --smoke: WORK/performance.md)")
    p.add_argument("--keep-fleet", action="store_true", help="leave the bench fleets running at the end")
    a = p.parse_args(argv)
    o = Options()
    if a.smoke:
        o = Options(n=5, big_n=8, wan_n=5, rounds=1, big_rounds=1, archive_rows=20_000, archive_queries=30,
                    flood_mb=2, latency_lines=2, work=Path("/tmp/small-yi-bench-smoke"), port=0, wan_port=0,
                    smoke=True)
    for key in ("n", "big_n", "wan_n", "rounds", "big_rounds", "ansible_rounds", "archive_rows", "flood_mb", "work",
                "port", "wan_port"):
        if getattr(a, key) is not None:
            setattr(o, key, getattr(a, key))
    o.keep_fleet = a.keep_fleet
    chosen = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(ALL)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    out = a.out or (o.work / "performance.md" if o.smoke else REPO / "docs" / "performance.md")
    return o, chosen, out


def _byte_compile(report: Report) -> None:
    """Byte-compile small-yi's own modules, as installing the package does (the peers' and the floor's
    libraries are installed, so theirs are compiled): with PYTHONDONTWRITEBYTECODE set, an editable
    checkout would otherwise compile every small-yi module from source in every timed process."""
    import compileall

    import smallyi

    compileall.compile_dir(str(Path(smallyi.__file__).parent), quiet=1)
    report.note("small-yi's modules were byte-compiled before timing (compileall), as a package install does")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts, chosen, out = parse(argv)
    started, t0 = now(), time.monotonic()
    report = Report()
    opts.work.mkdir(parents=True, exist_ok=True)
    if not peers.available():
        report.note(f"peer tools not found in {peers.PEERS_VENV}: run `python -m bench.setup_peers`; their rows are "
                    "skipped, and the raw-asyncssh floor runs on this venv's asyncssh")
    need = max(opts.n, opts.big_n if "big" in chosen else 0, 1)
    fl = fleet_mod.up(need, opts.work / "fleet", opts.port)
    print(f"bench: fleet of {need} hosts on port {fl.port} in {fl.directory}", flush=True)
    limits = fleet_mod.sshd_limits(fl)
    print(f"bench: sshd {limits}", flush=True)
    ws = Workspace(opts.work / "ws", fleet=fl)
    shutil.rmtree(ws.dir, ignore_errors=True)
    ws.write_config(max_concurrency=max(need, 500))
    ws.import_hosts()
    ctx = Context(opts, report, fl, ws)
    _byte_compile(report)
    failed: list[str] = []

    def step(name: str, fn: Callable[[], None]) -> None:
        if name not in chosen:
            return
        print(f"bench: {name} ({time.monotonic() - t0:.0f}s in)", flush=True)
        try:
            fn()
        except Exception as exc:
            traceback.print_exc()
            failed.append(name)
            report.note(f"scenario {name} failed: {type(exc).__name__}: {str(exc)[:300]}")

    try:
        step("startup", lambda: fanout.startup(ctx))
        step("cold", lambda: fanout.cold(ctx))
        step("ansible", lambda: fanout.ansible(ctx))
        step("warm", lambda: fanout.warm(ctx))
        step("latency", lambda: live.latency(ctx))
        step("flood", lambda: live.flood(ctx))
        step("big", lambda: fanout.big(ctx))
        ctx.stop_server()
        step("archive", lambda: _archive(ctx))
        step("wan", lambda: _wan(ctx))
    finally:
        ctx.stop_server()
        if not opts.keep_fleet:
            fleet_mod.down(fl)
    minutes = (time.monotonic() - t0) / 60
    block = report.markdown(command=_command(argv), started=started, minutes=minutes)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_page(out, block)
        print(f"bench: wrote {out}", flush=True)
    print(block)
    print(f"bench: done in {minutes:.1f} min" + (f"; failed scenarios: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _archive(ctx: Context) -> None:
    archive.sqlite(ctx)
    archive.postgres(ctx)


def _wan(ctx: Context) -> None:
    o = ctx.opts
    fl = fleet_mod.up(o.wan_n, o.work / "fleet-wan", o.wan_port, delay_ms=10)
    try:
        ws = Workspace(o.work / "ws-wan", fleet=fl)
        shutil.rmtree(ws.dir, ignore_errors=True)
        ws.write_config(max_concurrency=max(o.wan_n, 500))
        ws.import_hosts()
        fanout.wan(ctx, fl, ws)
    finally:
        if not o.keep_fleet:
            fleet_mod.down(fl)


def _command(argv: list[str]) -> str:
    return "make bench   # = .venv/bin/python -m bench" + (" " + " ".join(argv) if argv else "")


if __name__ == "__main__":
    sys.exit(main())
