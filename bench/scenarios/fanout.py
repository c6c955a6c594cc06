"""One command on every host: small-yi cold and warm against the floor and the peers.

Rounds are interleaved (every tool once per round, in the same order), so a burst of noise on this
shared machine hits one round of every tool rather than every round of one tool; ratios are taken
within a round, then the median and range of those ratios reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import peers
from bench.context import CMD, Context, run_peer, shown, sy_cold_argv, sy_server_argv, sy_summary
from bench.proc import Stat, Timed, rss_mb, run_timed
from bench.report import Row, fmt_ratio, ratio
from bench.smallyi import Workspace
from smallyi.testing import Fleet

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Series:
    """One tool's rounds in one scenario."""

    name: str
    n: int
    runs: list[Timed] = field(default_factory=list)
    oks: list[int] = field(default_factory=list)
    task_s: list[float] = field(default_factory=list)

    def walls(self) -> list[float]:
        return [t.wall for t in self.runs]

    def cpus(self) -> list[float]:
        return [t.cpu for t in self.runs]

    def ok(self) -> str:
        return f"{min(self.oks)}/{self.n}" if self.oks else "-"

    def all_ok(self) -> bool:
        return bool(self.oks) and min(self.oks) == self.n


Runner = Callable[[], tuple[Timed, int, float]]


def _peer_runner(p: peers.Peer, timeout: float = 900) -> Runner:
    def go() -> tuple[Timed, int, float]:
        t, ok = run_peer(p, timeout=timeout)
        return t, ok, float("nan")
    return go


def _sy_runner(argv: list[str], ws: Workspace) -> Runner:
    def go() -> tuple[Timed, int, float]:
        t = run_timed(argv, cwd=ws.dir, timeout=900)
        ok, dur = sy_summary(t)
        return t, ok, dur
    return go


def _rounds(ctx: Context, tools: dict[str, Runner], n: int, rounds: int) -> dict[str, Series]:
    out = {name: Series(name, n) for name in tools}
    for r in range(rounds):
        for name, go in tools.items():
            t, ok, dur = go()
            s = out[name]
            s.runs.append(t)
            s.oks.append(ok)
            s.task_s.append(dur)
            print(f"    round {r + 1}/{rounds} {name:<30} ok {ok}/{n} wall {t.wall:.2f}s cpu {t.cpu:.2f}s", flush=True)
            if ok < n:
                print(f"      (not every host answered) {t.tail(400)}", flush=True)
    return out


def _row(ctx: Context, scenario: str, s: Series, floor: Series | None, other: str = "") -> Row:
    ratios = [ratio(a, b) for a, b in zip(s.walls(), floor.walls(), strict=False)] if floor else []
    return ctx.report.add(Row(scenario, s.name, s.n, s.ok(), Stat.of(s.walls()), Stat.of(s.cpus()),
                              fmt_ratio(ratios) if floor else "", other))


def _subs(ctx: Context, fleet: Fleet, sub: str, ws: Workspace) -> dict[str, str]:
    return {str(sub): "SUB", str(fleet.directory): "FLEET", str(ws.dir): "WS", str(peers.PEERS_VENV): "$PEERS_VENV",
            str(REPO) + "/": ""}


def cold(ctx: Context) -> None:
    """Cold ``small-yi run`` in-process (archive included) vs the raw-asyncssh floor, parallel-ssh, pyinfra."""
    n, rounds = ctx.opts.n, ctx.opts.rounds
    sub = ctx.fleet.subset(n)
    group = ctx.ws.group(n)
    sy = sy_cold_argv(ctx.ws, group, n)
    tools: dict[str, Runner] = {"raw asyncssh, cold (floor)": _peer_runner(peers.floor(sub, CMD)),
                                "small-yi run (in-process, cold)": _sy_runner(sy, ctx.ws)}
    if peers.have("python"):
        tools["parallel-ssh, pool 100"] = _peer_runner(peers.pssh(sub, CMD))
    if peers.have("pyinfra"):
        tools["pyinfra exec --parallel 100"] = _peer_runner(peers.pyinfra(sub, CMD))
    subs = _subs(ctx, ctx.fleet, str(sub), ctx.ws)
    ctx.report.commands["cold: small-yi"] = shown(sy, subs)
    ctx.report.commands["cold: floor"] = shown(peers.floor(sub, CMD).argv, subs)
    ctx.report.commands["cold: parallel-ssh"] = shown(peers.pssh(sub, CMD).argv, subs)
    ctx.report.commands["cold: pyinfra"] = shown(peers.pyinfra(sub, CMD).argv, subs)
    res = _rounds(ctx, tools, n, rounds)
    floor = res["raw asyncssh, cold (floor)"]
    scen = f"cold, N={n}"
    for _name, s in res.items():
        _row(ctx, scen, s, floor)
    me = res["small-yi run (in-process, cold)"]
    wr = Stat.of([ratio(a, b) for a, b in zip(me.walls(), floor.walls(), strict=False)])
    cr = Stat.of([ratio(a, b) for a, b in zip(me.cpus(), floor.cpus(), strict=False)])
    ctx.report.bar(scen, "wall <= 1.15x the raw-asyncssh cold floor", fmt_ratio(
        [ratio(a, b) for a, b in zip(me.walls(), floor.walls(), strict=False)]), wr.median <= 1.15 and me.all_ok())
    for peer in ("parallel-ssh, pool 100", "pyinfra exec --parallel 100"):
        if peer in res:
            pw = Stat.of(res[peer].walls()).median
            mw = Stat.of(me.walls()).median
            ctx.report.bar(scen, f"wall below {peer.split(',')[0].split(' exec')[0]}",
                           f"{mw:.2f} s vs {pw:.2f} s", mw < pw)
        else:
            ctx.report.bar(scen, f"wall below {peer}", "peer not installed (python -m bench.setup_peers)", None)
    ctx.report.bar(scen, "client CPU per host <= 1.3x the floor's", f"{fmt_ratio([ratio(a, b) for a, b in zip(me.cpus(), floor.cpus(), strict=False)])} "
                   f"({Stat.of(me.cpus()).median / n * 1000:.2f} vs {Stat.of(floor.cpus()).median / n * 1000:.2f} ms/host)",
                   cr.median <= 1.3)
    ctx.cold_sy = me


def ansible(ctx: Context) -> None:
    """``ansible -f 50`` cold on the same N: the 10x bar."""
    n = ctx.opts.n
    if not peers.have("ansible"):
        ctx.report.bar(f"Ansible, N={n}", "small-yi >= 10x faster than ansible -f 50 (cold)",
                       "ansible not installed (python -m bench.setup_peers)", None)
        return
    sub = ctx.fleet.subset(n)
    p = peers.ansible(sub, CMD)
    ctx.report.commands["cold: ansible"] = "ANSIBLE_SSH_ARGS='-o ControlMaster=auto -o ControlPersist=60s' " + shown(
        p.argv, _subs(ctx, ctx.fleet, str(sub), ctx.ws))
    res = _rounds(ctx, {"ansible -f 50": _peer_runner(p, timeout=1800)}, n, ctx.opts.ansible_rounds)
    s = res["ansible -f 50"]
    me: Series | None = ctx.cold_sy
    mine = Stat.of(me.walls()).median if me else float("nan")
    _row(ctx, f"Ansible, N={n}", s, None, other=f"{ratio(Stat.of(s.walls()).median, mine):.1f}x small-yi's cold wall")
    r = ratio(Stat.of(s.walls()).median, mine)
    ctx.report.bar(f"Ansible, N={n}", "small-yi >= 10x faster than ansible -f 50 (cold)",
                   f"{r:.1f}x ({Stat.of(s.walls()).median:.1f} s vs {mine:.2f} s)", None if math.isnan(r) else r >= 10)


def warm(ctx: Context, n: int | None = None, rounds: int | None = None) -> None:
    """A second ``small-yi run --server`` over the server's pooled connections vs the pooled floor."""
    n = n or ctx.opts.n
    rounds = rounds or ctx.opts.rounds
    sub = ctx.fleet.subset(n)
    group = ctx.ws.group(n)
    srv = ctx.ensure_server()
    argv = sy_server_argv(srv, group, n)
    first = run_timed(argv, cwd=ctx.ws.dir, timeout=900)
    ok_first, _dur_first = sy_summary(first)
    print(f"    first server run (opens the pool): ok {ok_first}/{n} wall {first.wall:.2f}s", flush=True)
    floor_p = peers.floor(sub, CMD, rounds=3)
    pooled: list[float] = []

    def floor_go() -> tuple[Timed, int, float]:
        t, ok = run_peer(floor_p)
        rt = peers.round_times(t.out)
        pooled.extend(rt[1:])
        return t, ok, float("nan")

    tools: dict[str, Runner] = {"small-yi run --server (warm)": _sy_runner(argv, ctx.ws)}
    if n == ctx.opts.n:
        tools["raw asyncssh, 3 rounds"] = floor_go
    subs = _subs(ctx, ctx.fleet, str(sub), ctx.ws)
    subs[srv.url] = "$URL"
    ctx.report.commands[f"warm N={n}: small-yi"] = shown(argv, subs) + "   # after one run that opens the pool"
    if n == ctx.opts.n:
        ctx.report.commands["warm: pooled floor"] = shown(floor_p.argv, subs) + "   # rounds 2-3"
    res = _rounds(ctx, tools, n, rounds)
    me = res["small-yi run --server (warm)"]
    scen = f"warm (pooled), N={n}"
    rss = rss_mb(srv.pid)
    pool_stat = Stat.of(pooled)
    if pooled:
        ctx.report.add(Row(scen, "raw asyncssh, pooled (floor rounds 2-3)", n,
                           res["raw asyncssh, 3 rounds"].ok(), pool_stat, None, "1.00x",
                           "in-process round time"))
    ratios = [ratio(w, pool_stat.median) for w in me.walls()] if pooled else []
    ctx.report.add(Row(scen, "small-yi run --server (warm)", n, me.ok(), Stat.of(me.walls()), Stat.of(me.cpus()),
                       fmt_ratio(ratios) if pooled else "",
                       f"task {Stat.of(me.task_s).fmt()} s on the server; server RSS {rss:.0f} MB"))
    if pooled:
        ctx.report.bar(scen, "CLI wall <= 1.3x the pooled floor (floor rounds 2-3)",
                       f"{fmt_ratio(ratios)} ({Stat.of(me.walls()).median:.2f} s vs {pool_stat.median:.2f} s)",
                       Stat.of(ratios).median <= 1.3 and me.all_ok())
    if n == ctx.opts.big_n:
        ctx.report.bar(scen, "every host ok", f"{me.ok()} (first server run {ok_first}/{n})",
                       me.all_ok() and ok_first == n)
        ctx.report.bar(scen, f"server RSS with {n} pooled connections <= 300 MB (aim)", f"{rss:.0f} MB", rss <= 300)


def big(ctx: Context) -> None:
    """N = 1000 both modes: cold in-process vs the floor, then warm through the server (with its RSS)."""
    n = ctx.opts.big_n
    if n > len(ctx.fleet.hosts):
        ctx.report.note(f"N={n} skipped: the fleet has {len(ctx.fleet.hosts)} hosts")
        return
    sub = ctx.fleet.subset(n)
    group = ctx.ws.group(n)
    tools: dict[str, Runner] = {"raw asyncssh, cold (floor)": _peer_runner(peers.floor(sub, CMD)),
                                "small-yi run (in-process, cold)": _sy_runner(sy_cold_argv(ctx.ws, group, n), ctx.ws)}
    res = _rounds(ctx, tools, n, ctx.opts.big_rounds)
    floor = res["raw asyncssh, cold (floor)"]
    scen = f"cold, N={n}"
    for s in res.values():
        _row(ctx, scen, s, floor)
    me = res["small-yi run (in-process, cold)"]
    ctx.report.bar(scen, "every host ok", me.ok(), me.all_ok())
    warm(ctx, n, ctx.opts.big_rounds + 1)


def wan(ctx: Context, fleet: Fleet, ws: Workspace) -> None:
    """The 20 ms RTT fleet: every tool, cold, plus small-yi warm; small-yi must stay ahead of every peer."""
    n = len(fleet.hosts)
    sub = fleet.subset(n)
    ws_group = ws.group(n)
    rounds = ctx.opts.rounds
    tools: dict[str, Runner] = {"raw asyncssh, cold (floor)": _peer_runner(peers.floor(sub, CMD)),
                                "small-yi run (in-process, cold)": _sy_runner(sy_cold_argv(ws, ws_group, n), ws)}
    peer_list = []
    if peers.available():
        peer_list = [peers.pssh(sub, CMD), peers.pyinfra(sub, CMD), peers.fabric(sub, CMD), peers.xargs(sub, CMD)]
        for p in peer_list:
            tools[p.name] = _peer_runner(p)
    res = _rounds(ctx, tools, n, rounds)
    if peers.have("ansible"):
        res.update(_rounds(ctx, {"ansible -f 50": _peer_runner(peers.ansible(sub, CMD), 1800)}, n, ctx.opts.ansible_rounds))
    srv = ws.serve()
    try:
        argv = sy_server_argv(srv, ws_group, n)
        run_timed(argv, cwd=ws.dir)  # opens the pool
        floor_p = peers.floor(sub, CMD, rounds=3)
        pooled: list[float] = []

        def floor_go() -> tuple[Timed, int, float]:
            t, ok = run_peer(floor_p)
            pooled.extend(peers.round_times(t.out)[1:])
            return t, ok, float("nan")

        warm_res = _rounds(ctx, {"small-yi run --server (warm)": _sy_runner(argv, ws), "pooled floor": floor_go},
                           n, rounds)
    finally:
        srv.stop()
    scen = f"20 ms RTT, N={n}"
    floor = res["raw asyncssh, cold (floor)"]
    for s in sorted(res.values(), key=lambda s: Stat.of(s.walls()).median):
        _row(ctx, scen, s, floor)
    if pooled:
        ctx.report.add(Row(scen, "raw asyncssh, pooled (floor rounds 2-3)", n, warm_res["pooled floor"].ok(),
                           Stat.of(pooled), None, "", "in-process round time"))
    wm = warm_res["small-yi run --server (warm)"]
    ctx.report.add(Row(scen, "small-yi run --server (warm)", n, wm.ok(), Stat.of(wm.walls()), Stat.of(wm.cpus()),
                       fmt_ratio([ratio(w, Stat.of(pooled).median) for w in wm.walls()]) + " of pooled" if pooled else "",
                       f"task {Stat.of(wm.task_s).fmt()} s on the server"))
    me = res["small-yi run (in-process, cold)"]
    mine = Stat.of(me.walls()).median
    behind = [(name, Stat.of(s.walls()).median) for name, s in res.items()
              if name not in ("raw asyncssh, cold (floor)", "small-yi run (in-process, cold)")]
    best = min(behind, key=lambda x: x[1]) if behind else None
    if best:
        ctx.report.bar(scen, "small-yi (cold) ahead of every peer",
                       f"small-yi {mine:.2f} s; best peer {best[0]} {best[1]:.2f} s", mine < best[1] and me.all_ok())
    else:
        ctx.report.bar(scen, "small-yi (cold) ahead of every peer", "peers not installed", None)
    subs = _subs(ctx, fleet, str(sub), ws)
    ctx.report.commands["20 ms RTT fleet"] = (f"bench.fleet.up({n}, FLEET, {fleet.port}, delay_ms=10)   # sshd on 127.0.0.1 "
                                              f"behind bench/delay_line.py --listen-port {fleet.port} --delay-ms 10")
    ctx.report.commands["20 ms RTT: xargs"] = shown(peers.xargs(sub, CMD).argv, subs)
    ctx.report.commands["20 ms RTT: fabric"] = shown(peers.fabric(sub, CMD).argv, subs)


def startup(ctx: Context) -> None:
    """What a cold in-process run pays before its first connection: ``small-yi run`` on the ``local`` host."""
    rounds = ctx.opts.rounds
    floor_argv = [peers.floor_python(), "-c", "import asyncssh"]
    sy = [*sy_cold_argv(ctx.ws, "x", 1, "true")]
    sy[2:4] = ["--hosts", "local"]
    tools: dict[str, Runner] = {
        "python -c 'import asyncssh' (floor's start)": lambda: (run_timed(floor_argv), 1, float("nan")),
        "small-yi run --hosts local --cmd true": _sy_runner(sy, ctx.ws),
    }
    res = _rounds(ctx, tools, 1, rounds)
    floor = res["python -c 'import asyncssh' (floor's start)"]
    for s in res.values():
        _row(ctx, "CLI start-up", s, floor, other="process start to exit")
    ctx.report.commands["start-up"] = shown(sy, {str(ctx.ws.dir): "WS", str(REPO) + "/": ""})
