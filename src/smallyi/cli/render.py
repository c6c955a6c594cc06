"""Printing a task as it runs: ``[host] line`` per output line, a live counter, a closing summary.

A host's lines are printed inert (``termsafe.safe``: control sequences shown, not sent) unless the
operator asks for its colours (``--color``) or for the text as received (``--raw``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from rich.text import Text

from smallyi.cli.common import console, stdout_gone
from smallyi.cli.termsafe import Show, safe
from smallyi.tasks.reasons import shape

_COLORS = ("36", "32", "33", "35", "34", "96", "92", "93", "95", "94")
FINAL = ("success", "failed", "timeout", "unreachable", "cancelled", "interrupted")
#: hosts a summary names per reason before "and N more"
NAMED = 3


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
        #: (status, reason shape) -> the first host that ended so: later ones do not repeat the reason
        self._reasons: dict[tuple[str, str], str] = {}
        self.done = 0
        self.started = time.monotonic()
        self._drawn = False
        self._last_draw = 0.0

    def __call__(self, w: Mapping[str, Any]) -> None:
        try:
            self._print(w)
        except BrokenPipeError:  # `| head`: the rest of the run is not shown, and not lost (the archive has it)
            if self.out is sys.stdout:
                stdout_gone()
            self.quiet = True

    def _print(self, w: Mapping[str, Any]) -> None:
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
                self.out.write(self._line(w["host"], safe(self._why(w)), True))
        elif stream == "cut" and not self.quiet:
            self._clear()
            self.out.write(self._line(w["host"], f"[{w.get('lines')} lines cut from the archive]", True))
        self._draw()

    def _why(self, w: Mapping[str, Any]) -> str:
        """``unreachable: <reason>`` the first time a reason comes, ``unreachable (same reason as host-001)``
        after: each distinct reason is printed once (hosts' own addresses aside, ``reasons.shape``)."""
        status, reason = str(w["status"]), str(w.get("reason") or "")
        first = self._reasons.setdefault((status, shape(reason)), str(w["host"]))
        if not reason:
            return status
        return f"{status}: {reason}" if first == w["host"] else f"{status} (same reason as {first})"

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


def count_statuses(results: list[dict[str, Any]]) -> dict[str, int]:
    """Result rows counted by status."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def hosts_named(count: int, hosts: list[str], *, named: int = NAMED) -> str:
    """``480 hosts: host-001, host-002, host-003 and 477 more`` (all of them when there are few)."""
    shown = hosts if count <= named + 2 and len(hosts) >= count else hosts[:named]
    more = count - len(shown)
    names = ", ".join(safe(h) for h in shown) + (f" and {more} more" if more > 0 else "")
    return f"{count} host{'s' if count != 1 else ''}: {names}"


def reason_lines(reasons: list[dict[str, Any]]) -> None:
    """Each distinct reason once: ``unreachable (480 hosts: a, b, c and 477 more): connect to ...``."""
    for g in reasons:
        why = f": {safe(g['reason'])}" if g.get("reason") else ""
        console.print(Text.assemble((safe(str(g["status"])), "red"), f" ({hosts_named(g['count'], g['hosts'])}){why}"),
                      soft_wrap=True)


def summary(task: dict[str, Any], counts: dict[str, int], reasons: list[dict[str, Any]]) -> None:
    """The closing summary: each distinct reason of the hosts that did not succeed once
    (``tasks.reasons``), then the task's status and its hosts counted by status."""
    reason_lines(reasons)
    total = sum(counts.values())
    order = [s for s in FINAL if counts.get(s)] + [s for s in counts if s not in FINAL]
    line = ", ".join(f"{s} {counts[s]}" for s in order) or "no hosts"
    task_dur = task.get("duration")
    took = f" in {task_dur:.2f}s" if isinstance(task_dur, int | float) else ""
    status = str(task.get("status", ""))
    style = "green" if status == "success" else "red"
    console.print(Text.assemble(f"task {task.get('id')} ", (safe(status), style), f": {safe(line)} ({total} hosts{took})"))
