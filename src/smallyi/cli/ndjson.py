"""``--output ndjson``: one JSON object per line per event, written and flushed as it happens.

For the commands that stream (``run``, ``logs``, ``tasks show``), so ``small-yi run ... -o ndjson | jq -c``
sees each line the moment a host prints it. The schema (docs/output.md#ndjson) is the task stream's
wire form (``execution.wire``) with a ``type`` instead of the wire's ``stream`` for what is not an output line:

- ``task``: the task, once, first (``run``, ``tasks show``);
- ``start``: a host began; ``output``: one line (``stream`` stdout or stderr, ``text``); ``cut``: lines
  the archive did not keep (``of``, ``lines``, ``bytes``); ``done``: a host ended (``status``,
  ``exit_code``, ``reason``, ``duration``); each with ``seq`` (not for ``logs``), ``at`` and ``host``;
- ``summary``: the task, its hosts counted by status, each distinct reason once, last.

Every ``at`` is ISO 8601 UTC with milliseconds (``timestamps.iso``). Values are exact; C1 and BIDI
controls are ``\\uXXXX`` escapes, as in ``--output json`` (``termsafe.safe_json``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from smallyi.cli.common import stdout_gone
from smallyi.cli.termsafe import safe_json
from smallyi.execution.wire import CUT_FIELDS, DONE_FIELDS

_LINE = ("stdout", "stderr")
#: a wire event's fields that an ndjson event of each kind keeps, after ``type``, ``seq``, ``at``, ``host``
_FIELDS: dict[str, tuple[str, ...]] = {"start": (), "cut": CUT_FIELDS, "done": DONE_FIELDS}


def event(wire: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ndjson event of a wire event (task stream or log follow); None for a kind it does not know."""
    stream = wire.get("stream")
    head: dict[str, Any] = {"type": "output" if stream in _LINE else stream}
    if "seq" in wire:
        head["seq"] = wire["seq"]
    head["at"] = wire.get("at")
    head["host"] = wire.get("host")
    if stream in _LINE:
        head["stream"] = stream
        head["text"] = wire.get("text", "")
        return head
    fields = _FIELDS.get(str(stream))
    if fields is None:
        return None
    if stream == "done" and "status" not in wire:  # an archived event's details are in its text
        wire = {**wire, **json.loads(wire.get("text") or "{}")}
    for name in fields:
        head[name] = wire.get(name)
    return head


def write(obj: dict[str, Any], out: TextIO | None = None) -> bool:
    """One line, flushed; False if ``out`` is a closed pipe (``| head``: stdout then goes to /dev/null)."""
    stream = out or sys.stdout
    try:
        stream.write(safe_json(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)) + "\n")
        stream.flush()
    except BrokenPipeError:
        if stream is sys.stdout:
            stdout_gone()
        return False
    return True


class Printer:
    """Takes wire events as they come and writes each as an ndjson line. Events that come before
    :meth:`begin` (a run's first hosts may start while the task is being read back) wait for the
    ``task`` line, so it is always first."""

    def __init__(self, *, quiet: bool = False, out: TextIO | None = None, follow: bool = False) -> None:
        """``follow``: the events of a log follow, which is no task: no ``task`` line to wait for."""
        self.quiet = quiet
        self.out = out or sys.stdout
        self._waiting: list[dict[str, Any]] | None = None if follow else []
        #: the reader went away (a closed pipe): nothing more is written
        self.gone = False

    def __call__(self, wire: Mapping[str, Any]) -> None:
        ev = event(wire)
        if ev is None or (self.quiet and ev["type"] == "output"):
            return
        if self._waiting is not None:
            self._waiting.append(ev)
        else:
            self._write(ev)

    def _write(self, ev: dict[str, Any]) -> None:
        if not self.gone:
            self.gone = not write(ev, self.out)

    def begin(self, task: dict[str, Any]) -> None:
        """The ``task`` line, then the events that came before it."""
        self._write({"type": "task", "at": task.get("created_at"), "task": task})
        waiting, self._waiting = self._waiting or [], None
        for ev in waiting:
            self._write(ev)

    def summary(self, task: dict[str, Any], counts: dict[str, int], reasons: list[dict[str, Any]],
                **extra: Any) -> None:
        """The last line: the task as it ended, its hosts by status, each distinct reason once."""
        self._write({"type": "summary", "at": task.get("finished_at"), "task": task, "counts": counts,
                     "total": sum(counts.values()), "reasons": reasons, **extra})
