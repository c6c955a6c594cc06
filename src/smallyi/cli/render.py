"""Printing a task as it runs: ``[host] line`` per output line, a live counter, a closing summary.

A host's lines are printed inert (``termsafe.safe``: control sequences shown, not sent) unless the
operator asks for its colours (``--color``) or for the text as received (``--raw``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.table import Table
from rich.text import Text

from smallyi.cli.common import console, plain
from smallyi.cli.termsafe import Show, safe

_COLORS = ("36", "32", "33", "35", "34", "96", "92", "93", "95", "94")
FINAL = ("success", "failed", "timeout", "unreachable", "cancelled", "interrupted")


class LivePrinter:
    """Consumes wire events (dicts with seq/host/stream/text) and prints them as they come.

    On a terminal a one-line counter (done/total, by status) stays at the bottom on stderr,
    redrawn at most ten times a second; lines go to stdout one per line (so pipes and grep see them),
    their control sequences shown as text unless ``show`` says otherwise.
    """

    def __init__(self, total: int, *, out: TextIO | None = None, err: TextIO | None = None,
                 quiet: bool = False, show: Show = Show.SAFE) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.total = total
        self.quiet = quiet
        self.show = show
        self.color = self.out.isatty()
        self.progress = self.err.isatty() and not quiet
        self.counts: dict[str, int] = {}
        self.done = 0
        self.started = time.monotonic()
        self._drawn = False
        self._last_draw = 0.0

    def __call__(self, w: dict[str, Any]) -> None:
        stream = w.get("stream")
        if stream in ("stdout", "stderr"):
            if self.quiet:
                return
            self._clear()
            self.out.write(self._line(w["host"], self.show.text(w["text"]), stream == "stderr"))
        elif stream == "done":
            self.done += 1
            self.counts[w["status"]] = self.counts.get(w["status"], 0) + 1
            if w["status"] != "success" and not self.quiet:
                self._clear()
                self.out.write(self._line(w["host"], safe(f"{w['status']}: {w.get('reason', '')}"), True))
        elif stream == "cut" and not self.quiet:
            self._clear()
            self.out.write(self._line(w["host"], f"[{w.get('lines')} lines cut from the archive]", True))
        self._draw()

    def _line(self, host: str, text: str, is_err: bool) -> str:
        host = safe(host)
        if not self.color:
            return f"[{host}] {text}\n" if not is_err else f"[{host}]! {text}\n"
        c = _COLORS[hash(host) % len(_COLORS)]
        body = f"\x1b[31m{text}\x1b[0m" if is_err else text
        return f"\x1b[{c}m[{host}]\x1b[0m {body}\n"

    def _clear(self) -> None:
        if self._drawn:
            self.err.write("\r\x1b[K")
            self._drawn = False

    def _draw(self, force: bool = False) -> None:
        if not self.progress:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1 and self._drawn:
            return
        self.out.flush()
        parts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        self.err.write(f"\r\x1b[K{self.done}/{self.total} hosts done  {parts}  {now - self.started:.1f}s")
        self.err.flush()
        self._drawn = True
        self._last_draw = now

    def finish(self) -> None:
        self._clear()
        self.err.flush()
        self.out.flush()


def summary(task: dict[str, Any], results: list[dict[str, Any]], *, full_table_max: int = 50,
            counts: dict[str, int] | None = None) -> None:
    """The closing summary: counts by status, then a table of hosts (all, or those that did not succeed).

    ``results`` are every host's, or with ``counts`` (of every host, by status) only those that did not
    succeed when there are more than ``full_table_max`` hosts (``tasks.summary.summarize``).
    """
    if counts is None:
        counts = {}
        for r in results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
    total = sum(counts.values())
    shown = results if total <= full_table_max else [r for r in results if r["status"] != "success"]
    if shown:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for col in ("host", "status", "exit", "duration", "reason"):
            table.add_column(col)
        for r in sorted(shown, key=lambda r: (r["status"] == "success", r["host"])):
            style = "green" if r["status"] == "success" else "red"
            dur = f"{r['duration']:.2f}s" if r.get("duration") is not None else "-"
            table.add_row(plain(r["host"]), Text(safe(str(r["status"])), style),
                          "" if r["exit_code"] is None else str(r["exit_code"]), dur, plain(r.get("reason") or ""))
        console.print(table)
    order = [s for s in FINAL if counts.get(s)] + [s for s in counts if s not in FINAL]
    line = ", ".join(f"{s} {counts[s]}" for s in order) or "no hosts"
    task_dur = task.get("duration")
    took = f" in {task_dur:.2f}s" if isinstance(task_dur, int | float) else ""
    status = str(task.get("status", ""))
    style = "green" if status == "success" else "red"
    console.print(Text.assemble(f"task {task.get('id')} ", (safe(status), style), f": {safe(line)} ({total} hosts{took})"))
