"""The repository through the git CLI: fetch the branch into a bare mirror, read commits and files.

git runs as a subprocess with an argument list (never a shell string), no terminal prompts, and a
time limit; a revision given by a user is checked before it reaches git, so it can never be read as
an option. Files are read from the object database (``ls-tree`` + ``cat-file --batch``): nothing is
checked out, so a hostile repository cannot plant files on the server. git's errors become one
RepoError naming the command and the setting to check.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from smallyi.config import redact_url
from smallyi.errors import InputError, NotFound, RepoError
from smallyi.gitops.snapshot import Commit, Snapshot, wanted

#: a revision a user may name: a (partial) commit id, or a branch or tag name
_REV = re.compile(r"^(?:[0-9a-fA-F]{4,40}|[A-Za-z0-9_][A-Za-z0-9._/-]{0,200}(?:~[0-9]{1,4}|\^)?)$")
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,200}$")
#: the largest file read from the repository
MAX_BLOB = 4 * 1024 * 1024
GIT_TIMEOUT = 120.0


def is_remote(url: str) -> bool:
    """https://, ssh://, git:// ... or scp-style ``user@host:path``; anything else is a local path."""
    if "://" in url:
        return not url.startswith("file://")
    head = url.split("/", 1)[0]
    return ":" in head and not re.match(r"^[A-Za-z]:$", head)


def check_rev(rev: str) -> str:
    if not _REV.match(rev) or ".." in rev:
        raise InputError(f"{rev!r} is not a commit id, branch or tag name", field="commit")
    return rev


class GitRepo:
    """A bare mirror of one branch under ``workdir``, fetched from ``url``."""

    def __init__(self, url: str, branch: str, workdir: Path) -> None:
        if not url or url.startswith("-"):
            raise RepoError("gitops.repo is not set: give the repository's URL or path (see docs/gitops.md)")
        if not _BRANCH.match(branch) or ".." in branch:
            raise RepoError(f"gitops.branch {branch!r} is not a branch name")
        self.url = url
        self.branch = branch
        self.mirror = workdir / "mirror.git"
        self._lock = asyncio.Lock()

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    async def fetch(self) -> str:
        """Bring the branch up to date from the repository; returns its head commit id."""
        async with self._lock:
            if not (self.mirror / "HEAD").exists():
                self.mirror.parent.mkdir(parents=True, exist_ok=True)
                await self._git("init", "--quiet", "--bare", str(self.mirror), mirror=False)
            await self._git("fetch", "--quiet", "--prune", "--no-tags", "--force", "--", self.url,
                            f"+{self.ref}:{self.ref}", what=f"fetching branch {self.branch} of {redact_url(self.url)}")
        return await self.head()

    async def head(self) -> str:
        """The branch's head as last fetched."""
        out = await self._git("rev-parse", "--verify", "--quiet", f"{self.ref}^{{commit}}", ok=(0, 1))
        sha = out.decode().strip()
        if not sha:
            raise RepoError(f"branch {self.branch!r} is not in {redact_url(self.url)}; check gitops.branch")
        return sha

    async def resolve(self, rev: str) -> str:
        """The full commit id ``rev`` names; NotFound if the mirror has no such commit."""
        check_rev(rev)
        out = await self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", ok=(0, 1))
        sha = out.decode().strip()
        if not sha:
            raise NotFound(f"commit {rev!r} is not in the repository's branch {self.branch} (as last fetched)",
                           field="commit")
        return sha

    async def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether ``older`` is ``newer`` or in its history."""
        code = await self._code("merge-base", "--is-ancestor", older, newer)
        return code == 0

    async def commit(self, sha: str) -> Commit:
        out = await self._git("show", "-s", "--format=%H%x00%an%x00%ae%x00%aI%x00%B", sha)
        fields = out.decode("utf-8", "replace").split("\0", 4)
        if len(fields) < 5:
            raise RepoError(f"git show {sha}: unexpected output")
        return Commit(fields[0], fields[1], fields[2], fields[3], fields[4].strip(), self.branch)

    async def log(self, limit: int = 20) -> list[Commit]:
        """The branch's latest commits, newest first."""
        out = await self._git("log", f"--max-count={limit}", "--format=%H%x00%an%x00%ae%x00%aI%x00%s%x1e", self.ref)
        commits = []
        for rec in out.decode("utf-8", "replace").split("\x1e"):
            fields = rec.strip("\n").split("\0")
            if len(fields) == 5:
                commits.append(Commit(fields[0], fields[1], fields[2], fields[3], fields[4], self.branch))
        return commits

    async def snapshot(self, sha: str) -> Snapshot:
        """The commit and its ``hosts/``, ``templates/`` and ``sync.yaml`` files (read from objects)."""
        commit = await self.commit(sha)
        listing = await self._git("ls-tree", "-r", "-z", "--long", "--full-tree", sha)
        blobs: list[tuple[str, str]] = []
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            mode, kind, obj, blob_size = meta.split()
            path = raw_path.decode("utf-8", "replace")
            if kind != b"blob" or not wanted(path) or mode == b"120000":  # symlinks are not followed
                continue
            if int(blob_size) > MAX_BLOB:
                raise InputError(f"{path} (commit {commit.short}) is {int(blob_size)} bytes, more than the "
                                 f"{MAX_BLOB // (1024 * 1024)} MiB GitOps reads", field="repo")
            blobs.append((path, obj.decode()))
        files: dict[str, bytes] = {}
        if blobs:
            data = await self._git("cat-file", "--batch", stdin="".join(f"{o}\n" for _, o in blobs).encode())
            pos = 0
            for path, _ in blobs:
                header_end = data.index(b"\n", pos)
                size = int(data[pos:header_end].split()[2])
                files[path] = data[header_end + 1: header_end + 1 + size]
                pos = header_end + 1 + size + 1
        return Snapshot(commit, files)

    # -- running git -----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C", GIT_CONFIG_NOSYSTEM="1")
        env["GIT_SSH_COMMAND"] = os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        return env

    async def _run(self, *args: str, stdin: bytes | None = None, mirror: bool = True) -> tuple[int, bytes, bytes]:
        argv = ["git", *(["--git-dir", str(self.mirror)] if mirror else []), *args]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self._env(),
            )
        except FileNotFoundError:
            raise RepoError("git is not installed on the server (GitOps runs the git command)") from None
        try:
            async with asyncio.timeout(GIT_TIMEOUT):
                out, err = await proc.communicate(stdin)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RepoError(f"git {args[0]} took longer than {GIT_TIMEOUT:g}s; check gitops.repo") from None
        return proc.returncode or 0, out, err

    async def _code(self, *args: str) -> int:
        return (await self._run(*args))[0]

    async def _git(self, *args: str, stdin: bytes | None = None, mirror: bool = True, ok: tuple[int, ...] = (0,),
                   what: str = "") -> bytes:
        code, out, err = await self._run(*args, stdin=stdin, mirror=mirror)
        if code not in ok:
            text = redact_url(err.decode("utf-8", "replace").strip()).splitlines()
            detail = "; ".join(line.removeprefix("fatal: ") for line in text[-3:]) or f"exit status {code}"
            raise RepoError(f"{what or 'git ' + args[0]} failed: {detail}; check gitops.repo and gitops.branch")
        return out
