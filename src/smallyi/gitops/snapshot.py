"""A commit as GitOps reads it: who, when, why, and the files that matter (``hosts/``, ``templates/``,
``sops/``, ``sync.yaml``), as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field

from smallyi.errors import InputError
from smallyi.gitops.reports import CommitInfo
from smallyi.timestamps import iso, parse

#: the parts of a repository GitOps reads; everything else in it is ignored
PREFIXES = ("hosts/", "templates/", "sops/")
MANIFEST = "sync.yaml"


def wanted(path: str) -> bool:
    return path == MANIFEST or path.startswith(PREFIXES)


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str = ""
    email: str = ""
    #: ISO 8601, as git prints it
    date: str = ""
    message: str = ""
    branch: str = ""

    @property
    def short(self) -> str:
        return self.sha[:10]

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def to_dict(self) -> CommitInfo:
        """What a template sees as ``commit`` (the date as git printed it: templates rely on it)."""
        return {"sha": self.sha, "short": self.short, "author": self.author, "email": self.email,
                "date": self.date, "message": self.message, "subject": self.subject, "branch": self.branch}

    def shown(self) -> CommitInfo:
        """What the API and the CLI show: :meth:`to_dict` with the date in UTC like every timestamp."""
        try:
            date = iso(parse(self.date)) or ""
        except ValueError:
            date = self.date
        return {**self.to_dict(), "date": date}


@dataclass(frozen=True)
class Snapshot:
    commit: Commit
    files: dict[str, bytes] = field(default_factory=dict)

    def text(self, path: str) -> str | None:
        """A file's text, None if absent; InputError naming it if it is not UTF-8."""
        data = self.files.get(path)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path} (commit {self.commit.short}) is not UTF-8 text: byte {exc.start} "
                             "cannot be read", field="repo") from None

    def texts(self, prefix: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for path in sorted(self.files):
            if path.startswith(prefix):
                out[path] = self.text(path) or ""
        return out
