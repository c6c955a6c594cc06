"""What a sync would change: each rendered file against what the host has now, with a unified diff. Pure."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from smallyi.gitops.render import Rendered

#: a diff longer than this is cut (the record says so)
MAX_DIFF = 64 * 1024


@dataclass(frozen=True)
class Change:
    """One rendered file next to the host's current one (``old`` None: the file does not exist)."""

    rendered: Rendered
    old: bytes | None
    #: the current file's mode and "uid:gid", to put back on a restore
    old_mode: int | None = None
    old_owner: str = ""

    @property
    def changed(self) -> bool:
        return self.old != self.rendered.content or bool(self.metadata)

    @property
    def metadata(self) -> str:
        """What differs besides the content: the mode, or an owner given as numeric ids ("" if nothing).

        An owner given by name cannot be told apart from the host's numeric ids without asking the host;
        it is applied whenever the file is written.
        """
        if self.old is None:
            return ""
        e = self.rendered.entry
        notes: list[str] = []
        if e.mode is not None and self.old_mode is not None and self.old_mode != e.mode:
            notes.append(f"mode {self.old_mode:04o} -> {e.mode:04o}")
        want = _numeric_owner(e.owner)
        if want and self.old_owner:
            have = self.old_owner.split(":")
            if want[0] != have[0] or (want[1] is not None and want[1] != have[1]):
                notes.append(f"owner {self.old_owner} -> {e.owner}")
        return ", ".join(notes)

    @property
    def diff(self) -> str:
        text = unified(self.old, self.rendered.content, self.rendered.path)
        meta = self.metadata
        return f"{self.rendered.path}: {meta}\n{text}" if meta else text


def _numeric_owner(owner: str) -> tuple[str, str | None] | None:
    """``uid`` or ``uid:gid`` as strings; None for an empty owner or one with a name in it."""
    user, colon, group = owner.partition(":")
    if not user.isdigit() or (colon and not group.isdigit()):
        return None
    return user, group if colon else None


def unified(old: bytes | None, new: bytes | None, path: str) -> str:
    """A unified diff (``a/path`` → ``b/path``; ``/dev/null`` for an absent side), cut at MAX_DIFF."""
    if old == new:
        return ""
    if _binary(old) or _binary(new):
        return f"Binary file {path} differs\n"
    a = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    b = (new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(
        a, b, fromfile="/dev/null" if old is None else f"a{path}", tofile="/dev/null" if new is None else f"b{path}",
    )
    out: list[str] = []
    size = 0
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        size += len(line)
        if size > MAX_DIFF:
            out.append(f"... diff cut at {MAX_DIFF // 1024} KiB\n")
            break
        out.append(line)
    return "".join(out)


def _binary(data: bytes | None) -> bool:
    return data is not None and b"\0" in data[:8192]
