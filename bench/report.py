"""The table: one row per (scenario, tool), medians with min-max, ratios to the floor, bars and verdicts.

``write_page`` replaces the part of ``docs/performance.md`` between the two bench markers, keeping
the hand-written analysis around it.
"""

from __future__ import annotations

import math
import platform
import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.proc import Stat

BEGIN = "<!-- bench:begin (written by `python -m bench`; edits here are overwritten) -->"
END = "<!-- bench:end -->"


@dataclass
class Row:
    scenario: str
    tool: str
    n: int
    ok: str = ""
    wall: Stat | None = None
    cpu: Stat | None = None
    ratio: str = ""
    other: str = ""

    def cpu_per_host_ms(self) -> str:
        if self.cpu is None or self.cpu.n == 0 or not self.n:
            return "-"
        return f"{self.cpu.median / self.n * 1000:.1f}"


@dataclass(frozen=True)
class Bar:
    scenario: str
    bar: str
    measured: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else ("met" if self.met else "**MISSED**")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"  {row.scenario:<28} {row.tool:<34} N={row.n:<5} ok={row.ok:<10} "
              f"wall={row.wall.fmt() if row.wall else '-':<22} cpu={row.cpu.fmt() if row.cpu else '-':<20} "
              f"{row.ratio} {row.other}", flush=True)
        return row

    def bar(self, scenario: str, bar: str, measured: str, met: bool | None) -> None:
        b = Bar(scenario, bar, measured, met)
        self.bars.append(b)
        print(f"  BAR {scenario}: {bar}: {measured} -> {b.verdict}", flush=True)

    def note(self, text: str) -> None:
        print(f"  note: {text}", flush=True)
        self.notes.append(text)

    def markdown(self, *, command: str, started: datetime, minutes: float) -> str:
        lines = [
            BEGIN,
            "",
            f"Measured {started.strftime('%Y-%m-%d %H:%M UTC')} on this machine ({_machine()}), "
            f"harness run {minutes:.1f} min. Reproduce with:",
            "",
            "```sh",
            command,
            "```",
            "",
            "| scenario | bar (issue 4) | measured | verdict |",
            "|---|---|---|---|",
        ]
        lines += [f"| {b.scenario} | {b.bar} | {b.measured} | {b.verdict} |" for b in self.bars]
        lines += [
            "",
            "| scenario | tool | N | hosts ok | wall s, median (min-max) | vs floor | client CPU s | CPU ms/host | other |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.scenario} | {r.tool} | {r.n or ''} | {r.ok} | {r.wall.fmt() if r.wall else '-'} | {r.ratio or '-'} "
                f"| {r.cpu.fmt() if r.cpu else '-'} | {r.cpu_per_host_ms()} | {r.other} |"
            )
        if self.notes:
            lines += ["", "Notes from this run:", ""] + [f"- {n}" for n in self.notes]
        if self.commands:
            lines += ["", "The exact commands timed (`FLEET` = the bench fleet's folder, `SUB` = its N-host subset, "
                      "`WS` = the small-yi workspace):", "", "| what | command |", "|---|---|"]
            for k, v in self.commands.items():
                cell = v.replace("|", "\\|")  # a pipe inside a table cell, even in code, ends the cell
                lines.append(f"| {k} | `{cell}` |")
        lines += ["", END]
        return "\n".join(lines)


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def fmt_ratio(values: list[float]) -> str:
    s = Stat.of(values)
    if s.n == 0:
        return "-"
    return f"{s.median:.2f}x" + (f" ({s.lo:.2f}-{s.hi:.2f})" if s.n > 1 and s.lo != s.hi else "")


def _machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    sshd = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr.strip().split(",")[0]
    return f"{cores} cores{mem}, Python {platform.python_version()}, {sshd}"


def write_page(path: Path, block: str) -> None:
    """Put ``block`` between the markers of ``path`` (appended if the page has none yet)."""
    text = path.read_text() if path.exists() else "# Performance\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def now() -> datetime:
    return datetime.now(UTC)
