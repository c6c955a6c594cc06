"""The command policy on terminal input: a guard against mistakes, NOT a security boundary. Pure.

Keystrokes are gathered into the line being typed; when Enter comes, the line is judged. A refused
line is not sent: the Enter is replaced by Ctrl-U (which empties the line in bash, zsh and dash's
line editors) and the user is told why. Once the user uses history, tab completion, cursor keys or
pastes control characters, the guard no longer knows the line and lets it through: a shell can
always be brought to run something a line filter never saw (aliases, scripts, editors, history).
Use it to catch an accidental ``reboot`` on the wrong host, not to contain an operator.
"""

from __future__ import annotations

from collections.abc import Callable

from smallyi.policy.rules import Verdict

KILL_LINE = "\x15"
_RESET = {"\x03", "\x15", "\x04"}  # Ctrl-C, Ctrl-U, Ctrl-D: the line is gone
_ERASE = {"\x7f", "\x08"}


class LineGuard:
    """Feed it what the user types; it returns what to send to the shell and, if refused, why."""

    def __init__(self, check: Callable[[str], Verdict]) -> None:
        self._check = check
        self._line: list[str] = []
        #: False once the line holds something we cannot follow (escape sequences, completion)
        self._known = True
        #: the line the last refusal was about (for the audit trail)
        self.refused_line = ""

    def feed(self, data: str) -> tuple[str, str | None]:
        out: list[str] = []
        refusal = None
        for ch in data:
            if ch in ("\r", "\n"):
                line, known = "".join(self._line), self._known
                self._line, self._known = [], True
                if known and line.strip():
                    verdict = self._check(line)
                    if not verdict.allowed:
                        out.append(KILL_LINE)
                        refusal, self.refused_line = verdict.reason, line
                        continue
                out.append(ch)
                continue
            out.append(ch)
            if ch in _RESET:
                self._line, self._known = [], True
            elif ch in _ERASE:
                if self._line:
                    self._line.pop()
            elif ch == "\t" or ch == "\x1b" or (ord(ch) < 32):
                self._known = False
            else:
                self._line.append(ch)
        return "".join(out), refusal
