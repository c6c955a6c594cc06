"""The repository through the git CLI: fetch the branch into a bare mirror, read commits and files.

git runs as a subprocess with an argument list (never a shell string), no terminal prompts, and a
time limit (after which git and everything it started, ssh or the https helper, are killed); a
revision given by a user is checked before it reaches git, so it can never be read as an option.
Files are read from the object database (``ls-tree`` + ``cat-file --batch``): nothing is checked out,
so a hostile repository cannot plant files on the server. git's errors become one RepoError naming
the repository (its password redacted) and the setting to check.

A user and password in an https URL never reach a command line (where any local user could read them
in ``ps``): git gets the URL without them, and a credential helper scoped to that host hands them over
from git's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path
from urllib.parse import unquote, urlsplit

from smallyi.config import redact_url
from smallyi.errors import InputError, NotFound, RepoError
from smallyi.gitops.snapshot import Commit, Snapshot, wanted
from smallyi.storage import private

#: a revision a user may name: a (partial) commit id, or a branch or tag name
_REV = re.compile(r"^(?:[0-9a-fA-F]{4,40}|[A-Za-z0-9_][A-Za-z0-9._/-]{0,200}(?:~[0-9]{1,4}|\^)?)$")
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,200}$")
#: the largest file read from the repository
MAX_BLOB = 4 * 1024 * 1024
GIT_TIMEOUT = 120.0
#: git settings taken from the server's environment; every other GIT_* variable is dropped (a hook's
#: GIT_DIR must not point git elsewhere)
PASSED_ENV = ("GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH")
#: git's generic advice after a failed connection: it says nothing the lines before it do not
_BOILERPLATE = ("Please make sure you have the correct access rights", "and the repository exists.")
#: how many of git's error lines a RepoError quotes (the first and the last ones, where the cause is)
_DETAIL_LINES = 5
#: how long to wait for git to be gone after killing its group (a process that left the group, such as
#: an ssh ControlPersist master, may hold its pipes open: the time limit must still hold)
_REAP_TIMEOUT = 5.0
#: the helper that answers git's ``credential fill`` with the user and password taken out of the URL
_HELPER = '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" "$SMALLYI_GIT_USER" "$SMALLYI_GIT_PASSWORD"; }; f'


def is_remote(url: str) -> bool:
    """https://, ssh://, git:// ... or scp-style ``user@host:path``; anything else is a local path."""
    if "://" in url:
        return not url.startswith("file://")
    head = url.split("/", 1)[0]
    return ":" in head and not re.match(r"^[A-Za-z]:$", head)


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """An http(s) URL with a password: the URL without its user and password, and the environment that
    gives them to git through a credential helper scoped to that scheme, host and port (which also
    replaces any helper of the server user's git config there, so they are never stored). Other URLs
    are returned as they are."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or parts.password is None:
        return url, {}
    _, _, hostport = parts.netloc.rpartition("@")
    user, password = unquote(parts.username or ""), unquote(parts.password)
    if any(c in user + password for c in "\0\r\n"):
        # the helper answers in lines: a line break would add fields of its own (git refuses them too)
        raise RepoError(f"gitops.repo {redact_url(url)}: the user or password has a line break or NUL (%0A, %0D, %00)")
    key = f"credential.{parts.scheme}://{hostport}.helper"
    env = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": key, "GIT_CONFIG_VALUE_0": "",
           "GIT_CONFIG_KEY_1": key, "GIT_CONFIG_VALUE_1": _HELPER,
           "SMALLYI_GIT_USER": user, "SMALLYI_GIT_PASSWORD": password}
    return parts._replace(netloc=hostport).geturl(), env


def _hint(stderr: str) -> str:
    """The setting to check for git's whole error output ``stderr``, not only the lines a RepoError quotes
    (the one naming the cause may be among those left out)."""
    low = stderr.lower()
    # ssh: "Permission denied (publickey)." / "(publickey,password)."; never a local file's "Permission denied"
    if re.search(r"permission denied \([a-z,-]+\)", low) or "host key verification failed" in low:
        return ("check the ssh key and known_hosts file git's ssh uses (GIT_SSH_COMMAND in the server's "
                "environment; see docs/gitops.md)")
    if "authentication failed" in low or "could not read username" in low or "could not read password" in low:
        return "check the user and token in gitops.repo"
    # OpenSSL builds say "SSL certificate problem: ...", GnuTLS ones "server certificate verification
    # failed"; both say "certificate ... host name" for a name mismatch
    if "certificate" in low:
        return ("check that the server's certificate is signed by a CA the server trusts and names its host "
                "(GIT_SSL_CAINFO in its environment; see docs/gitops.md)")
    return "check gitops.repo and gitops.branch"


def _detail(stderr: str) -> list[str]:
    """git's error lines worth quoting: without git's generic advice, the first and last few."""
    text = [redact_url(line.strip()) for line in stderr.splitlines()]
    text = [line.removeprefix("fatal: ") for line in text if line and line not in _BOILERPLATE]
    if len(text) > _DETAIL_LINES:
        text = [*text[:2], "...", *text[2 - _DETAIL_LINES:]]
    return text


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
        #: the URL as messages show it
        self.display = redact_url(url)
        #: what git is given: the URL without a password, which comes from the environment instead
        self._fetch_url, self._credentials = split_credentials(url)
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
                private.make_dir(self.mirror.parent)  # the repository's files: 0700, as the data folder
                await self._git("init", "--quiet", "--bare", str(self.mirror), mirror=False)
            await self._git("fetch", "--quiet", "--prune", "--no-tags", "--force", "--", self._fetch_url,
                            f"+{self.ref}:{self.ref}", what=f"fetching branch {self.branch} of {self.display}")
        return await self.head()

    async def head(self) -> str:
        """The branch's head as last fetched."""
        out = await self._git("rev-parse", "--verify", "--quiet", f"{self.ref}^{{commit}}", ok=(0, 1))
        sha = out.decode().strip()
        if not sha:
            raise RepoError(f"branch {self.branch!r} is not in {self.display}; check gitops.branch")
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
        env.update({k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)})
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        env.update(self._credentials)
        return env

    async def _run(self, *args: str, stdin: bytes | None = None, mirror: bool = True) -> tuple[int, bytes, bytes]:
        argv = ["git", *(["--git-dir", str(self.mirror)] if mirror else []), *args]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self._env(),
                start_new_session=True,  # no terminal for ssh to prompt on; one group to kill at the time limit
            )
        except FileNotFoundError:
            raise RepoError("git is not installed on the server (GitOps runs the git command)") from None
        try:
            async with asyncio.timeout(GIT_TIMEOUT):
                out, err = await proc.communicate(stdin)
        except TimeoutError:
            _kill_group(proc.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _REAP_TIMEOUT)
            raise RepoError(f"git {args[0]} of {self.display} took longer than {GIT_TIMEOUT:g}s and was "
                            "stopped; check gitops.repo") from None
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        return proc.returncode or 0, out, err

    async def _code(self, *args: str) -> int:
        return (await self._run(*args))[0]

    async def _git(self, *args: str, stdin: bytes | None = None, mirror: bool = True, ok: tuple[int, ...] = (0,),
                   what: str = "") -> bytes:
        code, out, err = await self._run(*args, stdin=stdin, mirror=mirror)
        if code not in ok:
            stderr = err.decode("utf-8", "replace")
            detail = "; ".join(_detail(stderr)) or f"exit status {code}"
            raise RepoError(f"{what or 'git ' + args[0]} failed: {detail}; {_hint(stderr)}")
        return out


def _kill_group(pid: int) -> None:
    """Kill git's process group: git and the ssh or https helper it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
