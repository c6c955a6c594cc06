"""Problems found in a repository's files, each with its file and line, reported all at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from smallyi.errors import InputError

#: at most this many problems are spelled out in one message
SHOWN = 20


@dataclass
class RepoProblems:
    """Collects ``file:line: message`` problems; ``raise_if_any`` turns them into one InputError."""

    what: str = "the repository"
    items: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, path: str, line: int, message: str) -> None:
        self.items.append((path, line, message))

    def lines(self) -> list[str]:
        return [f"{p}:{n}: {m}" if n else f"{p}: {m}" for p, n, m in sorted(self.items, key=lambda i: (i[0], i[1]))]

    def raise_if_any(self) -> None:
        if self.items:
            raise InputError(summary(f"{self.what}: {len(self.items)} problem(s), nothing was synced", self.lines()),
                             field="repo")


def summary(head: str, lines: list[str]) -> str:
    shown = lines[:SHOWN]
    more = f"\n  ... and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
    return head + ":\n" + "\n".join(f"  {line}" for line in shown) + more
