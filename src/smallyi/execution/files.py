"""What a file transfer asks for and what it answers, per file and per host (pure values).

``engine.put_files`` writes :class:`FilePut` s, ``engine.get_files`` reads paths; both answer one
:class:`HostFiles` per host, with one :class:`FileResult` per file in the order asked.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from smallyi.errors import InputError
from smallyi.types import HostStatus

#: the largest file ``get_files`` reads (config files, not data sets)
MAX_FILE_BYTES = 16 * 1024 * 1024
#: a default mode for a file that did not exist and whose mode was not given
DEFAULT_MODE = 0o644
#: owner and group names: what useradd accepts (no leading dash, so never an option), or a number
_OWNER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")

#: waits for the job's connection rate before a new connection (reusing one never waits)
Admit = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FilePut:
    """One file to write; ``content=None`` removes it (how a restore undoes a file that was new)."""

    path: str
    content: bytes | None
    #: "user", "user:group" or numeric ids; empty keeps the current file's owner (new files: the login user)
    owner: str = ""
    #: permission bits; None keeps the current file's mode (new files: 0644)
    mode: int | None = None
    #: create missing parent directories first (with the login user's default mode)
    mkdir: bool = False


@dataclass(frozen=True, slots=True)
class FileResult:
    """What happened to one file: written / removed / read (``content``, or ``missing``), or ``error``."""

    path: str
    ok: bool
    content: bytes | None = None
    missing: bool = False
    error: str = ""
    #: get: the file's permission bits and "uid:gid", so that a restore can put them back
    mode: int | None = None
    owner: str = ""


@dataclass(slots=True)
class HostFiles:
    """One host's transfer: how it ended (as a command would) and each file's result."""

    host: str
    status: HostStatus
    reason: str = ""
    files: list[FileResult] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == HostStatus.SUCCESS and all(f.ok for f in self.files)

    def file(self, path: str) -> FileResult | None:
        return next((f for f in self.files if f.path == path), None)


def check_path(path: str) -> str:
    """An absolute, normalised path without NUL or newline; InputError naming it otherwise."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InputError(f"path {path!r} is not absolute: target paths start with '/'", field="path")
    if "\0" in path or "\n" in path or "\r" in path:
        raise InputError(f"path {path!r} contains a NUL or newline character", field="path")
    if posixpath.normpath(path) != path or path.endswith("/"):
        raise InputError(
            f"path {path!r} is not in normal form (no '..', '.', '//' or trailing '/'): "
            f"write {posixpath.normpath(path)!r}", field="path",
        )
    return path


def parse_owner(owner: str) -> tuple[str, str]:
    """``"www-data:adm"`` → ("www-data", "adm"); ``"root"`` → ("root", ""); InputError if malformed."""
    user, colon, group = owner.partition(":")
    for part in (user, group) if colon else (user,):
        if not _OWNER.match(part):
            raise InputError(
                f"owner {owner!r} is not USER or USER:GROUP (names: letters, digits, '_.-', "
                "not starting with '-'; or numeric ids)", field="owner",
            )
    return user, group


def check_mode(mode: int) -> int:
    if not 0 <= mode <= 0o7777:
        raise InputError(f"mode {mode:o} is not a permission mode (0000 to 7777, octal)", field="mode")
    return mode
