"""GitOps as a service: plan, sync, roll back, take webhooks, poll, and check for drift.

A sync, start to end: fetch the branch; read the commit's files; parse ``hosts/`` and ``sync.yaml``
and render every file for every target host, in the rendering process (``worker``) under the
``gitops.render_*`` limits; check that the repository's hosts take over no host it did not create
(one error in any of this and nothing is written anywhere, the record says why); import ``hosts/``
into the inventory as source ``git``; fetch, compare, write, check, restore, reload (``distribute``);
record every file's outcome and what it left (the drift check compares against that). One sync runs
at a time per process; plans and syncs of one commit share one render. Progress goes to the bus topic
``gitops:<sync id>`` and to an optional listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

from smallyi.audit.trail import AuditTrail
from smallyi.bus.base import Bus
from smallyi.config import Settings, redact_url
from smallyi.errors import AuthError, ConfigError, InputError, NotFound, SmallYiError, TemplateError
from smallyi.execution.engine import Engine
from smallyi.execution.transfer import TransferOptions
from smallyi.gitops import webhook
from smallyi.gitops.bounds import RenderLimits
from smallyi.gitops.distribute import Distributor, Limits, counts, planned
from smallyi.gitops.inventory import RepoTrust
from smallyi.gitops.problems import RepoProblems, summary
from smallyi.gitops.render import Desired, digest, render_commit
from smallyi.gitops.repo import GitRepo, is_remote
from smallyi.gitops.reports import (
    CommitInfo,
    FileStatus,
    GitOpsStatus,
    SopFileProblem,
    SopsReport,
    SyncKind,
    SyncPlan,
    SyncRecord,
    SyncStatus,
    SyncSummary,
    WebhookAnswer,
)
from smallyi.gitops.snapshot import Commit, Snapshot
from smallyi.gitops.store import TAKEN, FileRecord, SyncStore, file_result, hosts_of
from smallyi.gitops.worker import Worker, WorkerStopped
from smallyi.inventory.service import InventoryService, not_git_owned
from smallyi.runners import runner_id

log = logging.getLogger(__name__)

#: progress events (``start``, ``inventory``, ``sops``, ``phase``, ``file``, ``end``): small JSON-ready dicts,
#: one shape per ``type``, numbered (``seq``) as they go out
Listener = Callable[[dict[str, Any]], None]
ZERO = "0" * 40


class SopSink(Protocol):
    """Stores a commit's SOPs (``smallyi.sop.gitsource.GitSops``)."""

    async def adopt(self, files: Mapping[str, str], *, repo: str, commit: str, by: str,
                    dry_run: bool = False) -> SopsReport: ...


def topic(sync_id: int) -> str:
    return f"gitops:{sync_id}"


def repo_url(settings: Settings) -> str:
    """``gitops.repo`` with a relative local path resolved against the config file's folder."""
    url = settings.gitops.repo
    if not url or is_remote(url) or url.startswith("file://"):
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else (Path(settings.base_dir) / path).resolve())


class GitOpsService:
    """See the module docstring. ``open`` builds it and, in the server, starts its pollers."""

    def __init__(self, *, settings: Settings, engine: Engine, inventory: InventoryService, store: SyncStore,
                 bus: Bus | None = None, runner: str = "", audit: AuditTrail | None = None,
                 sops: SopSink | None = None) -> None:
        cfg = settings.gitops
        self.settings = settings
        self.cfg = cfg
        self.engine = engine
        self.inventory = inventory
        self.store = store
        self.bus = bus
        self.runner = runner or runner_id("server")
        #: refused webhooks, syncs and rollbacks are recorded here (None: not audited, e.g. unit tests)
        self.audit = audit
        #: where ``sops/*.yaml`` go (None: SOP files in the repository are ignored)
        self.sops = sops
        workdir = Path(cfg.workdir).expanduser()
        if not workdir.is_absolute():
            workdir = (Path(settings.base_dir) / workdir).resolve()
        self.repo: GitRepo | None = GitRepo(repo_url(settings), cfg.branch, workdir) if cfg.repo else None
        self.limits = Limits(timeout=cfg.timeout, concurrency=cfg.concurrency)
        self.render_limits = RenderLimits(timeout=cfg.render_timeout, memory=cfg.render_memory,
                                          output=cfg.render_max_output)
        #: what the repository's hosts may set of what the API keeps for secrets.write
        self.trust = RepoTrust(host_key_policy=settings.ssh.host_key_policy, key_secrets=frozenset(cfg.ssh_key_secrets))
        #: renders commits in a child process under ``render_limits``
        self.worker = Worker(memory=cfg.render_memory)
        self._rendering: dict[str, asyncio.Future[Desired]] = {}
        self._lock = asyncio.Lock()
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen_head: str | None = None
        #: called with each finished sync, rollback and drift record (the server: notifications); its
        #: errors are logged, never the sync's
        self.on_finish: Callable[[SyncRecord], Awaitable[None]] | None = None

    def reconfigure(self, settings: Settings) -> None:
        """A reloaded config, of which the service takes ``gitops.webhook_secret``, ``gitops.notify`` (through
        ``on_finish``), ``gitops.ssh_key_secrets`` and the ``ssh.host_key_policy`` a repository's hosts may not
        loosen; ``settings`` keeps the keys that wait for a restart (the repository, pollers and limits) as
        they were (``config_changes.merge``)."""
        self.settings, self.cfg = settings, settings.gitops
        self.trust = RepoTrust(host_key_policy=settings.ssh.host_key_policy,
                               key_secrets=frozenset(settings.gitops.ssh_key_secrets))

    async def _finish(self, sync_id: int, **values: Any) -> None:
        await self.store.finish(sync_id, **values)
        if self.on_finish is not None:
            try:
                await self.on_finish(await self.store.get(sync_id))
            except Exception:
                log.exception("gitops: the hook after sync %s failed", sync_id)

    @classmethod
    def open(cls, settings: Settings, *, db: Any, engine: Engine, inventory: InventoryService, bus: Bus,
             kind: str, background: list[asyncio.Task[None]], audit: AuditTrail | None = None,
             sops: SopSink | None = None) -> GitOpsService:
        """The service; for the server, its pollers join ``background`` (cancelled at close)."""
        svc = cls(settings=settings, engine=engine, inventory=inventory, store=SyncStore(db), bus=bus,
                  runner=runner_id(kind), audit=audit, sops=sops)
        if kind == "server":
            background.append(asyncio.get_running_loop().create_task(svc.run_background()))
            if svc.enabled:
                svc.worker.warm()
        return svc

    async def close(self) -> None:
        """Stop the rendering process (and renders under way)."""
        for job in list(self._rendering.values()):
            job.cancel()
        await self.worker.close()

    @property
    def enabled(self) -> bool:
        return self.repo is not None

    def _repo(self) -> GitRepo:
        if self.repo is None:
            raise ConfigError("GitOps is off: set gitops.repo (and gitops.branch) in the config; see docs/gitops.md")
        return self.repo

    # -- reading ---------------------------------------------------------------------------------

    async def status(self) -> GitOpsStatus:
        """Whether GitOps is on, where from, and the last sync and drift check."""
        state = await self.store.state()
        return {
            "enabled": self.enabled,
            "repo": redact_url(self.cfg.repo) if self.cfg.repo else "",
            "branch": self.cfg.branch,
            "poll_interval": self.cfg.poll_interval,
            "drift_interval": self.cfg.drift_interval,
            "webhook": bool(self.cfg.webhook_secret),
            "last_sync": await self.store.last(),
            "last_drift": await self.store.last(kinds=(SyncKind.DRIFT,),
                                                statuses=(SyncStatus.SUCCESS, SyncStatus.FAILED, SyncStatus.ERROR)),
            "managed_files": len(state),
            "managed_hosts": len({s.host for s in state}),
        }

    async def history(self, *, kind: str | None = None, limit: int = 50, offset: int = 0,
                      ) -> tuple[list[SyncSummary], int]:
        return await self.store.history(kind=kind, limit=limit, offset=offset)

    async def get(self, sync_id: int) -> SyncRecord:
        return await self.store.get(sync_id)

    async def commits(self, limit: int = 20) -> list[CommitInfo]:
        """The branch's latest commits (fetched now), newest first: what a rollback can go to."""
        repo = self._repo()
        await repo.fetch()
        return [c.shown() for c in await repo.log(limit)]

    # -- plan ------------------------------------------------------------------------------------

    async def plan(self, rev: str | None = None, *, listener: Listener | None = None) -> SyncPlan:
        """What syncing ``rev`` (default: the branch head) would change, with diffs; writes nothing."""
        self.worker.warm()  # starts while git fetches
        snapshot = await self._repo().snapshot(await self._resolve(rev))
        desired = await self._render(snapshot)
        await self._check_hosts(desired)
        distributor = Distributor(self.engine, self.limits, listener)
        changes, settled = await distributor.compare(desired)
        records = planned(changes, settled)
        sops = await self._adopt_sops(snapshot, by="plan", dry_run=True)
        plan: SyncPlan = {"commit": desired.commit.shown(), "counts": counts(records),
                          "hosts": hosts_of([file_result(r) for r in records])}
        if sops is not None:
            plan["sops"] = sops
        return plan

    # -- sync and rollback -----------------------------------------------------------------------

    async def sync(self, rev: str | None = None, *, trigger: str, user: str,
                   listener: Listener | None = None) -> SyncRecord:
        """Sync ``rev`` (default: the branch head) now; returns the finished record."""
        sync_id, sha = await self._queue(SyncKind.SYNC, rev, trigger=trigger, user=user)
        await self._run(sync_id, sha, listener)
        return await self.store.get(sync_id)

    async def rollback(self, to: str, *, trigger: str, user: str, listener: Listener | None = None) -> SyncRecord:
        """Re-render commit ``to`` (from the branch's history) and distribute it like a sync."""
        sync_id, sha = await self._queue(SyncKind.ROLLBACK, to, trigger=trigger, user=user)
        await self._run(sync_id, sha, listener)
        return await self.store.get(sync_id)

    async def start(self, kind: SyncKind, rev: str | None, *, trigger: str, user: str) -> int:
        """Like ``sync`` / ``rollback``, but in the background: returns the record's id at once."""
        sync_id, sha = await self._queue(kind, rev, trigger=trigger, user=user)
        self._inflight.add(sha)
        self._spawn(self._guarded(sync_id, sha))
        return sync_id

    async def _queue(self, kind: SyncKind, rev: str | None, *, trigger: str, user: str) -> tuple[int, str]:
        """Fetch, resolve ``rev`` (a rollback's must be in the branch's history), write the queued record."""
        if kind not in (SyncKind.SYNC, SyncKind.ROLLBACK):
            raise InputError(f"kind {str(kind)!r} is not sync or rollback", field="kind")
        repo = self._repo()
        self.worker.warm()  # starts while git fetches
        head = await repo.fetch()
        if kind == SyncKind.ROLLBACK:
            if not rev:
                raise InputError("a rollback needs the commit to go back to (--to COMMIT)", field="commit")
            sha = await repo.resolve(rev)
            if not await repo.is_ancestor(sha, head):
                raise InputError(f"commit {rev!r} is not in the history of branch {self.cfg.branch}; "
                                 "`small-yi sync history` lists the synced commits", field="commit")
        else:
            sha = head if rev is None else await repo.resolve(rev)
        sync_id = await self.store.create(kind=kind, trigger=trigger, commit=Commit(sha, branch=self.cfg.branch),
                                          requested_by=user, runner=self.runner, status=SyncStatus.QUEUED)
        await self._audit(f"gitops.{kind}", user=user, trigger=trigger, sha=sha, sync_id=sync_id)
        return sync_id, sha

    async def _guarded(self, sync_id: int, sha: str) -> None:
        """A background sync: its errors end up in its record and the log, never in the event loop."""
        try:
            await self._run(sync_id, sha, None)
        except SmallYiError as exc:
            log.error("gitops: sync %s of %s failed: %s", sync_id, sha[:10], exc.message)
        except Exception:
            log.exception("gitops: sync %s of %s failed", sync_id, sha[:10])
            with contextlib.suppress(Exception):
                await self._finish(sync_id, status=SyncStatus.ERROR, reason="internal error; see the server log")
        finally:
            self._inflight.discard(sha)

    async def _resolve(self, rev: str | None) -> str:
        repo = self._repo()
        head = await repo.fetch()
        return head if rev is None else await repo.resolve(rev)

    async def _audit(self, action: str, *, user: str, trigger: str, sha: str, sync_id: int) -> None:
        if self.audit is not None:
            await self.audit.safe_record(
                action, actor=user, target=f"commit {sha[:10]} of {self.cfg.branch}", perm="gitops.sync",
                source="api" if trigger in ("api", "webhook") else None, detail={"sync": sync_id, "trigger": trigger})

    async def _run(self, sync_id: int, sha: str, listener: Listener | None) -> None:
        """Render, import hosts, distribute and record one sync; errors end the record as ``error``."""
        seq = 0

        def emit(event: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            wire = {"seq": seq, "sync": sync_id, **event}
            if self.bus is not None:
                self.bus.publish(topic(sync_id), wire)
            if listener is not None:
                listener(wire)

        self._inflight.add(sha)
        try:
            async with self._lock:
                try:
                    snapshot = await self._repo().snapshot(sha)
                    await self.store.describe(sync_id, snapshot.commit)
                    emit({"type": "start", "commit": snapshot.commit.shown()})
                    desired = await self._render(snapshot)
                    await self._check_hosts(desired)
                    await self._import_hosts(desired, emit)  # first of the writes: refused whole, or done
                except SmallYiError as exc:
                    await self._finish(sync_id, status=SyncStatus.ERROR, reason=exc.message)
                    emit({"type": "end", "status": SyncStatus.ERROR, "reason": exc.message})
                    raise
                sops = await self._adopt_sops(snapshot, by=f"gitops sync {sync_id}")
                if sops is not None:
                    emit({"type": "sops", **sops})
                try:
                    records = await self._distribute(desired, emit)
                except BaseException as exc:
                    reason = "cancelled" if isinstance(exc, asyncio.CancelledError) else f"internal error: {exc!r}"
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._finish(sync_id, status=SyncStatus.INTERRUPTED, reason=reason))
                    raise
                bad = [r for r in records if r.status in (FileStatus.FAILED, FileStatus.RESTORED)]
                bad_sops = [p for p in (sops["problems"] if sops is not None else []) if p["severity"] == "error"]
                status = SyncStatus.FAILED if bad or bad_sops else SyncStatus.SUCCESS
                reason = "; ".join(
                    ([f"{len(bad)} file(s) not synced; first: {bad[0].host} {bad[0].path}: {bad[0].reason}"] if bad
                     else []) +
                    ([f"{len({p['file'] for p in bad_sops})} SOP file(s) not stored; first: {bad_sops[0]['text']}"]
                     if bad_sops else []))
                total = counts(records)
                if sops is not None:
                    total["sops"] = sops
                await self._finish(sync_id, status=status, reason=reason, counts=total, files=records,
                                        state_commit=sha, keep={(r.host.name, r.path) for r in desired.files})
                emit({"type": "end", "status": status, "reason": reason})
                log.info("gitops: sync %s of %s ended %s", sync_id, sha[:10], status)
        finally:
            self._inflight.discard(sha)
            if self.bus is not None:
                self.bus.close_topic(topic(sync_id))

    async def _render(self, snapshot: Snapshot) -> Desired:
        """The commit rendered in the rendering process; callers asking for the same commit meanwhile share it."""
        sha = snapshot.commit.sha
        job = self._rendering.get(sha)
        if job is None:
            job = asyncio.ensure_future(self._render_now(snapshot))
            self._rendering[sha] = job
            job.add_done_callback(functools.partial(self._rendered, sha))
        return await asyncio.shield(job)

    def _rendered(self, sha: str, job: asyncio.Future[Desired]) -> None:
        if self._rendering.get(sha) is job:
            del self._rendering[sha]
        if not job.cancelled():
            job.exception()  # retrieved: a render every caller stopped waiting for is not logged as lost

    async def _render_now(self, snapshot: Snapshot) -> Desired:
        files = {p: d for p, d in snapshot.files.items() if not p.startswith("sops/")}  # SOPs are not rendered
        limits = self.render_limits
        try:
            desired: Desired = await self.worker.call(render_commit, Snapshot(snapshot.commit, files),
                                                      trust=self.trust, limits=limits, timeout=limits.timeout)
        except WorkerStopped as exc:
            problem = f"at commit {snapshot.commit.short}: {exc.message}"
            raise TemplateError(summary(f"1 template problem(s) at commit {snapshot.commit.short}, nothing was "
                                        "written anywhere", [problem]), [problem]) from None
        return desired

    async def _check_hosts(self, desired: Desired) -> None:
        """InputError naming every repository host that is already in the inventory from elsewhere (added by
        hand, imported, the server itself): the repository creates and changes only its own hosts."""
        inv = desired.inventory
        sources = await self.inventory.sources([h.name for h in inv.hosts])
        problems = RepoProblems("hosts/")
        for name, source in sorted(sources.items()):
            if source != "git":
                path, line = inv.origins.get(name, ("hosts/", 0))
                problems.add(path, line, not_git_owned(name, source))
        problems.raise_if_any()

    async def _adopt_sops(self, snapshot: Snapshot, *, by: str, dry_run: bool = False) -> SopsReport | None:
        """Hand the commit's ``sops/`` to the SOP store; a failure here is reported, never raised."""
        if self.sops is None:
            return None
        texts: dict[str, str] = {}
        unreadable: list[SopFileProblem] = []
        for path, data in snapshot.files.items():
            if not path.startswith("sops/"):
                continue
            try:
                texts[path] = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                unreadable.append(_sop_problem(path, f"not UTF-8 text (byte {exc.start}); not stored"))
        try:
            report = await self.sops.adopt(texts, repo=redact_url(self.cfg.repo), commit=snapshot.commit.sha, by=by,
                                           dry_run=dry_run)
        except SmallYiError as exc:
            report = {"problems": [_sop_problem("sops/", f"storing the SOPs failed: {exc.message}")]}
        except Exception as exc:
            log.exception("gitops: storing the SOPs of %s failed", snapshot.commit.short)
            report = {"problems": [_sop_problem("sops/", f"storing the SOPs failed: {exc!r}")]}
        report["problems"] = [*unreadable, *report["problems"]]
        return report

    async def _import_hosts(self, desired: Desired, emit: Listener) -> None:
        """``hosts/`` into the inventory (source git); a host taken meanwhile by someone else is a Conflict."""
        report = await self.inventory.upsert(list(desired.inventory.hosts), source="git")
        removed = await self.store.remove_gone_hosts([h.name for h in desired.inventory.hosts])
        emit({"type": "inventory", **report.to_dict(), "removed": removed})

    async def _distribute(self, desired: Desired, emit: Listener) -> list[FileRecord]:
        distributor = Distributor(self.engine, self.limits, emit)
        changes, settled = await distributor.compare(desired)
        return [*settled, *await distributor.apply(changes)]

    # -- webhooks and polling --------------------------------------------------------------------

    async def webhook(self, headers: Mapping[str, str], body: bytes, *, client: str = "") -> WebhookAnswer:
        """A push from GitHub, GitLab or Gitea: checked, then synced in the background (at most once per commit).

        A wrong or missing signature raises AuthError (the API answers 401), logged and audited.
        """
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            sender = webhook.verify(lower, body, self.cfg.webhook_secret)
        except AuthError as exc:
            log.warning("gitops: webhook from %s refused: %s", client or "?", exc.message)
            if self.audit is not None:
                await self.audit.safe_record(
                    "gitops.webhook", actor=webhook.provider(lower) or "unknown", client=client, result="denied",
                    target=f"branch {self.cfg.branch}", source="api", detail={"reason": exc.message})
            raise
        push = webhook.parse(sender, lower, body)
        if not push.is_push:
            return {"status": "ignored", "reason": f"{sender} event {push.event!r} is not a push"}
        if self.repo is None:
            return {"status": "ignored", "reason": "GitOps is off (gitops.repo is not set)"}
        if push.branch != self.cfg.branch:
            return {"status": "ignored", "reason": f"push to {push.ref}, not to branch {self.cfg.branch}"}
        if push.after in ("", ZERO):
            return {"status": "ignored", "reason": f"branch {self.cfg.branch} was deleted"}
        return await self._accept(push.after, trigger="webhook", user=f"{sender}:{push.pusher}" if push.pusher else sender)

    async def _accept(self, sha: str, *, trigger: str, user: str) -> WebhookAnswer:
        """Queue a sync of ``sha`` unless it is already synced or on its way."""
        taken = await self.store.taken(sha)
        if sha in self._inflight or taken is not None:
            return {"status": "duplicate", "commit": sha, "sync": taken,
                    "reason": f"commit {sha[:10]} is already synced or being synced"}
        self._inflight.add(sha)
        sync_id = await self.store.create(kind=SyncKind.SYNC, trigger=trigger,
                                          commit=Commit(sha, branch=self.cfg.branch), requested_by=user,
                                          runner=self.runner, status=SyncStatus.QUEUED)
        await self._audit("gitops.sync", user=user, trigger=trigger, sha=sha, sync_id=sync_id)
        self._spawn(self._background_sync(sync_id, sha))
        return {"status": "accepted", "commit": sha, "sync": sync_id}

    async def _background_sync(self, sync_id: int, sha: str) -> None:
        try:
            repo = self._repo()
            head = await repo.fetch()
            try:
                full = await repo.resolve(sha)
            except NotFound:
                raise InputError(f"commit {sha[:10]} was pushed but is not on branch {self.cfg.branch} "
                                 f"(head {head[:10]})", field="commit") from None
            await self._run(sync_id, full, None)
        except SmallYiError as exc:
            log.error("gitops: sync %s of %s failed: %s", sync_id, sha[:10], exc.message)
            with contextlib.suppress(Exception):
                got = await self.store.get(sync_id)
                if not got["status"].final:
                    await self._finish(sync_id, status=SyncStatus.ERROR, reason=exc.message)
        except Exception:
            log.exception("gitops: sync %s of %s failed", sync_id, sha[:10])
            with contextlib.suppress(Exception):
                await self._finish(sync_id, status=SyncStatus.ERROR, reason="internal error; see the server log")
        finally:
            self._inflight.discard(sha)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def poll_once(self) -> WebhookAnswer | None:
        """Fetch; if the branch moved since last seen, queue a sync of its head (once per commit)."""
        head = await self._repo().fetch()
        if head == self._seen_head:
            return None
        first = self._seen_head is None
        self._seen_head = head
        if first:
            last = await self.store.last(kinds=(SyncKind.SYNC,), statuses=TAKEN)
            if last is not None and last["commit"] == head:
                return None
        return await self._accept(head, trigger="poll", user="poll")

    # -- drift -----------------------------------------------------------------------------------

    async def drift(self, *, trigger: str, user: str, listener: Listener | None = None) -> SyncRecord:
        """Compare every managed file with what the last sync left there; records a ``drift`` check."""
        state = await self.store.state()
        last = await self.store.last()
        commit = Commit(last["commit"] if last else ZERO, branch=self.cfg.branch,
                        message=f"drift check against sync {last['id']}" if last else "drift check")
        sync_id = await self.store.create(kind=SyncKind.DRIFT, trigger=trigger, commit=commit, requested_by=user,
                                          runner=self.runner)
        hosts = {h.name: h for h in await self.inventory.all_hosts()}
        wanted: dict[Any, list[str]] = {}
        records: list[FileRecord] = []
        for row in state:
            host = hosts.get(row.host)
            if host is None:
                records.append(FileRecord(row.host, row.path, row.template, FileStatus.FAILED,
                                          "the host is no longer in the inventory", digest=row.digest))
            else:
                wanted.setdefault(host, []).append(row.path)
        got = await self.engine.get_files(wanted, TransferOptions(timeout=self.limits.timeout,
                                                                  concurrency=self.limits.concurrency))
        for row in state:
            if row.host not in hosts:
                continue
            hf = got[row.host]
            fr = hf.file(row.path)
            if fr is None or not fr.ok:
                status, reason = FileStatus.FAILED, f"cannot read it: {fr.error if fr and fr.error else hf.reason}"
            elif fr.missing:
                status, reason = ((FileStatus.UNCHANGED, "") if row.digest == "" else
                                  (FileStatus.MISSING, f"the file is gone (sync {row.sync_id} wrote it)"))
            else:
                same = digest(fr.content or b"") == row.digest
                status, reason = ((FileStatus.UNCHANGED, "") if same else
                                  (FileStatus.DRIFTED, f"changed on the host since sync {row.sync_id} "
                                   f"(commit {row.commit[:10]})"))
            rec = FileRecord(row.host, row.path, row.template, status, reason, digest=row.digest)
            records.append(rec)
            if listener is not None:
                listener({"type": "file", "host": rec.host, "path": rec.path, "status": rec.status, "reason": reason})
        drifted = sorted({r.host for r in records if r.status in (FileStatus.DRIFTED, FileStatus.MISSING)})
        failed = [r for r in records if r.status == FileStatus.FAILED]
        outcome = SyncStatus.FAILED if drifted or failed else SyncStatus.SUCCESS
        why = (f"{len(drifted)} host(s) drifted: {', '.join(drifted[:10])}" if drifted else
               f"{len(failed)} file(s) could not be checked" if failed else "")
        await self._finish(sync_id, status=outcome, reason=why, counts=counts(records), files=records)
        if drifted:
            log.warning("gitops: drift on %d host(s): %s", len(drifted), ", ".join(drifted[:20]))
        return await self.store.get(sync_id)

    # -- the server's background work ------------------------------------------------------------

    async def run_background(self) -> None:
        """Recover interrupted syncs, then poll and check for drift on schedule (until cancelled)."""
        try:
            prefix = f"server:{socket.gethostname()}:"
            n = await self.store.interrupt_dead(prefix, self.runner)
            if n:
                log.warning("gitops: %d sync(s) left unfinished by a stopped server are marked interrupted", n)
        except Exception:
            log.exception("gitops: recovering interrupted syncs failed")
        loop = asyncio.get_running_loop()
        on = self.repo is not None
        next_poll = loop.time() + 1.0 if on and self.cfg.poll_interval > 0 else None
        next_drift = loop.time() + self.cfg.drift_interval if on and self.cfg.drift_interval > 0 else None
        try:
            if next_poll is None and next_drift is None:
                await asyncio.Event().wait()  # nothing scheduled: stay, so that shutdown stops webhook syncs
            while next_poll is not None or next_drift is not None:
                wake = min(t for t in (next_poll, next_drift) if t is not None)
                await asyncio.sleep(max(0.0, wake - loop.time()))
                now = loop.time()
                if next_poll is not None and now >= next_poll:
                    next_poll = now + self.cfg.poll_interval
                    await self._safely("polling", self.poll_once())
                if next_drift is not None and now >= next_drift:
                    next_drift = now + self.cfg.drift_interval
                    if await self.store.state():
                        await self._safely("the drift check", self.drift(trigger="schedule", user="schedule"))
        finally:
            for t in list(self._tasks):
                t.cancel()

    async def _safely(self, what: str, coro: Awaitable[Any]) -> None:
        try:
            await coro
        except SmallYiError as exc:
            log.error("gitops: %s failed: %s", what, exc.message)
        except Exception:
            log.exception("gitops: %s failed", what)


def _sop_problem(path: str, message: str) -> SopFileProblem:
    return {"file": path, "line": None, "step": None, "field": None, "message": message, "severity": "error",
            "text": f"{path}: {message}"}

