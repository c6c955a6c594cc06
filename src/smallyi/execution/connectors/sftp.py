"""File transfer over SFTP on a pooled SSH connection: atomic put, get, and owner lookup.

A put writes ``.<name>.smallyi-<random>`` beside the target (mode 0600 until done), flushes it to
disk where the server supports ``fsync@openssh.com``, sets mode and owner, then renames it over the
target with ``posix-rename@openssh.com``: a reader sees the old file or the new one, never half of
one. Owner names are resolved to ids on the host (SFTP v3 knows only numbers) with one ``id``/``getent``
command whose arguments are shell-quoted.
"""

from __future__ import annotations

import contextlib
import posixpath
import secrets
import shlex
from collections.abc import Sequence

import asyncssh

from smallyi.errors import InputError
from smallyi.execution.files import DEFAULT_MODE, MAX_FILE_BYTES, FilePut, FileResult, parse_owner


class OwnerLookupError(Exception):
    """An owner or group name that does not exist on the host."""


async def put_files(conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient,
                    files: Sequence[FilePut]) -> list[FileResult]:
    """Write each file atomically; one result per file (a failure names the file and why)."""
    owners: dict[str, tuple[int, int]] = {}
    results = []
    for f in files:
        try:
            if f.content is None:
                await _remove(sftp, f.path)
            else:
                ids = None
                if f.owner:
                    if f.owner not in owners:
                        owners[f.owner] = await lookup_owner(conn, f.owner)
                    ids = owners[f.owner]
                await _put(sftp, f, ids)
            results.append(FileResult(f.path, True))
        except (asyncssh.SFTPError, OwnerLookupError, InputError) as exc:
            results.append(FileResult(f.path, False, error=describe(exc, f.path)))
    return results


async def get_files(sftp: asyncssh.SFTPClient, paths: Sequence[str]) -> list[FileResult]:
    """Read each file; a file that does not exist is ``missing``, not an error."""
    results = []
    for path in paths:
        try:
            async with sftp.open(path, "rb", encoding=None) as fh:
                attrs = await fh.stat()
                size = attrs.size or 0
                if size > MAX_FILE_BYTES:
                    results.append(FileResult(path, False, error=f"{path}: {size} bytes, more than the "
                                              f"{MAX_FILE_BYTES // (1024 * 1024)} MiB small-yi reads"))
                    continue
                data = await fh.read()
            results.append(FileResult(
                path, True, content=data if isinstance(data, bytes) else data.encode(),
                mode=None if attrs.permissions is None else attrs.permissions & 0o7777,
                owner="" if attrs.uid is None or attrs.gid is None else f"{attrs.uid}:{attrs.gid}"))
        except asyncssh.SFTPNoSuchFile:
            results.append(FileResult(path, True, missing=True))
        except asyncssh.SFTPError as exc:
            results.append(FileResult(path, False, error=describe(exc, path)))
    return results


async def lookup_owner(conn: asyncssh.SSHClientConnection, owner: str) -> tuple[int, int]:
    """(uid, gid) of ``user[:group]`` on the host; numeric parts are taken as they are."""
    user, group = parse_owner(owner)
    if user.isdigit() and (group.isdigit() or not group):
        return int(user), int(group) if group else -1
    script = [shlex.join(["id", "-u", user]), shlex.join(["id", "-g", user])]
    if group:
        script.append(shlex.join(["getent", "group", group]))
    result = await conn.run(" && ".join(script), check=False, encoding="utf-8", stdin=asyncssh.DEVNULL)
    lines = str(result.stdout or "").splitlines()
    if result.exit_status != 0 or len(lines) < len(script):
        what = f"group {group!r}" if len(lines) >= 2 else f"user {user!r}"
        raise OwnerLookupError(f"owner {owner!r}: no {what} on this host")
    uid = int(user) if user.isdigit() else int(lines[0])
    gid = int(lines[1])
    if group:
        gid = int(group) if group.isdigit() else int(lines[2].split(":")[2])
    return uid, gid


async def _put(sftp: asyncssh.SFTPClient, f: FilePut, ids: tuple[int, int] | None) -> None:
    assert f.content is not None
    folder, name = posixpath.split(f.path)
    current: asyncssh.SFTPAttrs | None = None
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        current = await sftp.stat(f.path)
    tmp = posixpath.join(folder, f".{name}.smallyi-{secrets.token_hex(4)}")
    mode = f.mode if f.mode is not None else (
        current.permissions & 0o7777 if current is not None and current.permissions is not None else DEFAULT_MODE)
    if f.mkdir:
        await sftp.makedirs(folder, exist_ok=True)
    try:
        async with sftp.open(tmp, "wb", attrs=asyncssh.SFTPAttrs(permissions=0o600), encoding=None) as fh:
            await fh.write(f.content)
            with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                await fh.fsync()
        if ids is not None:
            uid, gid = ids
            if gid < 0:
                gid = (await sftp.stat(tmp)).gid or 0
            await sftp.chown(tmp, uid, gid)
        elif current is not None and current.uid is not None and current.gid is not None:
            with contextlib.suppress(asyncssh.SFTPError):  # keeping the old owner is best effort
                mine = await sftp.stat(tmp)
                if (mine.uid, mine.gid) != (current.uid, current.gid):
                    await sftp.chown(tmp, current.uid, current.gid)
        await sftp.chmod(tmp, mode)  # after chown, which may clear set-id bits
        await sftp.posix_rename(tmp, f.path)
    except BaseException:
        with contextlib.suppress(Exception):
            await sftp.remove(tmp)
        raise


async def _remove(sftp: asyncssh.SFTPClient, path: str) -> None:
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(path)


def describe(exc: BaseException, path: str) -> str:
    """An SFTP failure in plain words, naming the file."""
    if isinstance(exc, OwnerLookupError):
        return f"{path}: {exc}"
    if isinstance(exc, InputError):
        return f"{path}: {exc.message}"
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return f"{path}: the directory {posixpath.dirname(path)} does not exist on the host"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return f"{path}: permission denied for the login user"
    reason = getattr(exc, "reason", "") or type(exc).__name__
    return f"{path}: {reason}"
