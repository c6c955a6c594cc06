"""What validation reports: one problem per mistake, naming line, step and field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from smallyi.errors import InputError


class ProblemDict(TypedDict):
    """A problem as the API answers it (``ProblemOut``) and ``sop validate -o json`` prints it."""

    line: int | None
    step: str | None
    field: str | None
    message: str
    severity: Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    message: str
    line: int | None = None
    step: str | None = None
    field: str | None = None
    #: warnings do not stop a run (strict mode turns unknown fields and names into errors)
    warning: bool = False

    def describe(self, source: str = "") -> str:
        where = f"{source}:{self.line}" if self.line else source
        parts = [p for p in (where, f"step {self.step}" if self.step else "", self.field or "") if p]
        kind = "warning: " if self.warning else ""
        return f"{': '.join(parts)}: {kind}{self.message}" if parts else f"{kind}{self.message}"

    def to_dict(self) -> ProblemDict:
        return {"line": self.line, "step": self.step, "field": self.field, "message": self.message,
                "severity": "warning" if self.warning else "error"}


class SopInvalid(InputError):
    """A SOP with errors; ``problems`` lists every one (warnings too), nothing was stored or run."""

    code = "invalid_sop"

    def __init__(self, source: str, problems: list[Problem]) -> None:
        errors = [p for p in problems if not p.warning]
        lines = "\n".join(f"  {p.describe(source)}" for p in problems)
        super().__init__(f"{source}: {len(errors)} error(s):\n{lines}", field="source")
        self.source = source
        self.problems = problems
