"""Files and folders only small-yi's own user may read: the database, key files, full output logs, exports.

They hold bcrypt hashes, the archive, the audit trail and keys, so they are made 0600 (folders 0700) as
they are created, never made with the umask's 0644 and narrowed after: a reader who opens the file in
that window keeps it open. A file an older version left wider is narrowed at the next start, with a
notice. Folders that exist are left as they are (the operator chose them).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_dir(path: str | Path) -> Path:
    """``path`` and any missing parents, each one made 0700; folders that exist are left alone."""
    p = Path(path)
    missing: list[Path] = []
    for q in (p, *p.parents):
        if q.exists():
            break
        missing.append(q)
    for q in reversed(missing):
        try:
            q.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process
            continue
        os.chmod(q, DIR_MODE)  # the umask may have taken bits from mkdir's mode; never added any
    return p


def make_file(path: str | Path) -> bool:
    """Create ``path`` empty and 0600 (its folder as :func:`make_dir`) unless it exists; True if it made it."""
    p = Path(path)
    make_dir(p.parent)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def narrow(path: str | Path) -> None:
    """Make an existing file that group or others may read 0600, saying so; absent files are skipped."""
    p = Path(path)
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(p, FILE_MODE)
        log.warning("%s was readable by other users (mode %o); made it 0600", p, mode)


def open_new(path: str | Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """Open ``path`` for writing (``"w"``/``"wb"``, truncating), 0600 from its creation; an existing file
    is made 0600 before anything is written to it."""
    p = Path(path)
    make_dir(p.parent)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # not a pipe or a terminal given as the path
            os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
