"""What every scenario shares: the options, the report, the fleet, the small-yi workspace and server."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import peers
from bench.proc import Timed, run_timed
from bench.report import Report
from bench.smallyi import SMALL_YI, Server, Workspace
from smallyi.testing import Fleet

CMD = "uptime"


@dataclass
class Options:
    n: int = 500
    big_n: int = 1000
    wan_n: int = 200
    rounds: int = 3
    big_rounds: int = 1
    ansible_rounds: int = 1
    archive_rows: int = 1_000_000
    archive_queries: int = 300
    flood_mb: int = 100
    latency_lines: int = 5
    work: Path = Path("/tmp/small-yi-bench")
    port: int = 2300
    wan_port: int = 2310
    smoke: bool = False
    keep_fleet: bool = False
    profile: bool = False
    #: a server where the bench may create a database (scripts/test's SMALLYI_TEST_PG when set)
    postgres: str = field(default_factory=lambda: os.environ.get("SMALLYI_TEST_PG",
                                                                 "postgresql://postgres@127.0.0.1:5432"))


@dataclass
class Context:
    opts: Options
    report: Report
    fleet: Fleet
    ws: Workspace
    server: Server | None = None
    profiles: dict[str, str] = field(default_factory=dict)
    #: the cold small-yi series (the Ansible row compares with it)
    cold_sy: Any = None

    def ensure_server(self) -> Server:
        if self.server is None or self.server.proc.poll() is not None:
            self.server = self.ws.serve()
        return self.server

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def sy_cold_argv(ws: Workspace, group: str, n: int, cmd: str = CMD) -> list[str]:
    return [SMALL_YI, "run", "--group", group, "--cmd", cmd, "--concurrency", str(n), "--config", str(ws.config)]


def sy_server_argv(srv: Server, group: str, n: int, cmd: str = CMD, *extra: str) -> list[str]:
    return [SMALL_YI, "run", "--server", srv.url, "--token", srv.token, "--group", group, "--cmd", cmd,
            "--concurrency", str(n), *extra]


_SUMMARY = re.compile(r"task (\d+) (\w+): (.*) \((\d+) hosts(?: in ([0-9.]+)s)?\)")


def sy_summary(t: Timed) -> tuple[int, float]:
    """Hosts that succeeded and the task's own duration, from ``small-yi run``'s closing line."""
    found = _SUMMARY.findall(t.out)
    if not found:
        return 0, float("nan")
    _, _, counts, _, dur = found[-1]
    ok = re.search(r"success (\d+)", counts)
    return (int(ok.group(1)) if ok else 0), (float(dur) if dur else float("nan"))


def run_peer(p: peers.Peer, *, timeout: float = 900) -> tuple[Timed, int]:
    t = run_timed(p.argv, env=p.env, timeout=timeout)
    return t, p.ok(t.out + "\n" + t.err)  # the tools print some of it on stderr


def shown(argv: list[str], subs: dict[str, str]) -> str:
    """A command line for the page, with long paths replaced by short names and the token hidden."""
    text = shlex.join(argv)
    for long, short in sorted(subs.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(long, short)
    return re.sub(r"--token \S+", "--token $TOKEN", text)
