"""File transfer on the server itself (``connector: local``): the SFTP connector's duties, with ``os``.

Same atomic put (temporary file beside the target, fsync, owner and mode, ``os.replace``) and the same
answers, run in a worker thread so the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import posixpath
import pwd
import secrets
from collections.abc import Sequence

from smallyi.errors import InputError
from smallyi.execution.files import DEFAULT_MODE, MAX_FILE_BYTES, FilePut, FileResult, parse_owner


async def put_files(files: Sequence[FilePut]) -> list[FileResult]:
    return await asyncio.to_thread(lambda: [_put_one(f) for f in files])


async def get_files(paths: Sequence[str]) -> list[FileResult]:
    return await asyncio.to_thread(lambda: [_get_one(p) for p in paths])


def _put_one(f: FilePut) -> FileResult:
    try:
        if f.content is None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(f.path)
        else:
            _write(f)
        return FileResult(f.path, True)
    except (OSError, LookupError, InputError) as exc:
        return FileResult(f.path, False, error=_describe(exc, f.path))


def _write(f: FilePut) -> None:
    assert f.content is not None
    folder, name = posixpath.split(f.path)
    try:
        current: os.stat_result | None = os.stat(f.path)
    except FileNotFoundError:
        current = None
    ids = _owner_ids(f.owner) if f.owner else None
    if f.mkdir:
        os.makedirs(folder, exist_ok=True)
    tmp = posixpath.join(folder, f".{name}.smallyi-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(f.content)
            fh.flush()
            os.fsync(fh.fileno())
        if ids is not None:
            os.chown(tmp, *ids)
        elif current is not None and (current.st_uid, current.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(OSError):  # keeping the old owner is best effort
                os.chown(tmp, current.st_uid, current.st_gid)
        mode = f.mode if f.mode is not None else (current.st_mode & 0o7777 if current else DEFAULT_MODE)
        os.chmod(tmp, mode)
        os.replace(tmp, f.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _owner_ids(owner: str) -> tuple[int, int]:
    user, group = parse_owner(owner)
    try:
        entry = None if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise LookupError(f"owner {owner!r}: no user {user!r} on this host") from None
    uid = int(user) if entry is None else entry.pw_uid
    gid = entry.pw_gid if entry is not None else -1
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise LookupError(f"owner {owner!r}: no group {group!r} on this host") from None
    return uid, gid


def _get_one(path: str) -> FileResult:
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            size = st.st_size
            if size > MAX_FILE_BYTES:
                return FileResult(path, False, error=f"{path}: {size} bytes, more than the "
                                  f"{MAX_FILE_BYTES // (1024 * 1024)} MiB small-yi reads")
            return FileResult(path, True, content=fh.read(), mode=st.st_mode & 0o7777, owner=f"{st.st_uid}:{st.st_gid}")
    except FileNotFoundError:
        return FileResult(path, True, missing=True)
    except OSError as exc:
        return FileResult(path, False, error=_describe(exc, path))


def _describe(exc: BaseException, path: str) -> str:
    if isinstance(exc, InputError):
        return f"{path}: {exc.message}"
    if isinstance(exc, LookupError):
        return f"{path}: {exc.args[0]}"
    if isinstance(exc, FileNotFoundError):
        return f"{path}: the directory {posixpath.dirname(path)} does not exist on the host"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied for the user small-yi runs as"
    return f"{path}: {getattr(exc, 'strerror', None) or exc}"
