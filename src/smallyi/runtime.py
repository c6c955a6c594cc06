"""The running parts of small-yi, built once per process from settings: the server and the CLI share it.

``Runtime.open`` connects and migrates the database, syncs config users, registers the built-in
``local`` host, starts the engine and the task service; ``close`` stops them in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smallyi.approvals.requests import Approvals
from smallyi.approvals.withdraw import Withdrawal
from smallyi.audit.anchor import AnchorFile
from smallyi.audit.chain import AuditKeys
from smallyi.audit.trail import AuditTrail
from smallyi.auth import config_check
from smallyi.auth.gate import CommandGate
from smallyi.auth.host_keys import HostKeyPins
from smallyi.auth.rbac import RoleBook
from smallyi.auth.service import AuthService
from smallyi.bus.base import Bus
from smallyi.bus.factory import open_bus
from smallyi.config import Settings
from smallyi.errors import ConfigError, NotFound, StorageError
from smallyi.execution.connectors.base import Connector
from smallyi.execution.connectors.ssh import SSHConnector
from smallyi.execution.engine import Engine
from smallyi.inventory.service import InventoryService
from smallyi.runners import runner_id
from smallyi.secrets import keyring, redact, refs
from smallyi.secrets.store import Sealed, SecretStore
from smallyi.storage.db import Database, open_database
from smallyi.tasks.queries import Archive
from smallyi.tasks.service import TaskService

if TYPE_CHECKING:  # loaded when used: a `small-yi run` needs neither (Jinja2, the importers, the PTY code)
    from smallyi.execution.connectors.pty import PtyConnector
    from smallyi.gitops.service import GitOpsService
    from smallyi.policy.rules import CommandPolicy
    from smallyi.sop.automation import Automation

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    engine: Engine
    auth: AuthService
    inventory: InventoryService
    tasks: TaskService
    archive: Archive
    audit: AuditTrail
    roles: RoleBook
    gate: CommandGate
    #: command approval requests: what the gate holds, waiting for a second person
    approvals: Approvals
    secrets: SecretStore
    host_keys: HostKeyPins
    #: the SSH private key from the secret store (``ssh.private_key_secret``), else None
    ssh_key: bytes | None
    kind: str = "server"
    #: called after a reload applied a new config (``apply_config``): parts built outside the runtime that
    #: keep settings (the web terminal's service) take theirs from ``rt.settings`` again
    followers: list[Callable[[Runtime], None]] = field(default_factory=list)
    #: the server's SOP runner, schedules, notifications and tickets (``sop.automation.attach`` sets it at
    #: start; None in the CLI, which builds its own where a command needs them)
    automation: Automation | None = None
    _gitops: GitOpsService | None = None
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings, *, kind: str = "server",
                   connectors: Mapping[str, Connector] | None = None, references: bool = True) -> Runtime:
        """Everything a process needs; ``kind`` is "server" or "cli" (recovery differs).

        ``connectors`` replaces the engine's ways to reach hosts (tests: a fake connector).
        ``references=False`` leaves the config's stored-secret references (``secret:NAME``,
        ``ssh.private_key_secret``) unread: ``small-yi secrets`` must work before those secrets exist.
        """
        roles, policy = config_check.check(settings)  # before the database and key files are made
        redactor = redact.shared()
        redact.install(redactor)
        bus = await open_bus(settings.bus)  # an unreachable Redis stops the start before anything is written
        try:
            db = await open_database(settings)
        except BaseException:
            await bus.close()
            raise
        try:
            box, key_source = keyring.load(settings.secrets)
            log.info("secrets are encrypted with the master key from %s", key_source)
            secrets = SecretStore(db, box, redactor=redactor)
            if references:
                settings = await refs.resolve(settings, secrets.get)  # secret:NAME in the config
            audit = AuditTrail(db, keys=audit_keys(settings), source="server" if kind == "server" else kind,
                               anchor=AnchorFile(settings.audit.anchor_file))
            auth = AuthService(db, settings.auth, roles=roles, audit=audit, withdraw=Withdrawal(db))
            await auth.sync_config_users()
            inventory = InventoryService(db)
            await inventory.ensure_local_host()
            host_keys = HostKeyPins(db, audit)
            ssh_key = await read_ssh_key(settings, secrets) if references else None
            engine = Engine(settings.ssh, settings.execution, settings.output, connectors={
                "ssh": SSHConnector(settings.ssh, pins=host_keys, key_data=ssh_key, secrets=secrets.get),
                **(connectors or {})})
            approvals = Approvals(db, ttl=settings.policy.approval_ttl, accounts=auth.accounts)
            gate = CommandGate(policy, audit, approvals)
            tasks = TaskService(
                settings=settings, db=db, bus=bus, engine=engine, inventory=inventory, runner=runner_id(kind),
                gate=gate, audit=audit,
            )
            if kind == "server":
                await tasks.recover()
                if settings.ssh.host_key_policy == "off":
                    log.warning("ssh.host_key_policy is off: SSH host keys are not checked, so anyone on the "
                                "path to a host can pose as it; use accept-new or strict")
        except BaseException:
            await bus.close()
            await db.close()
            raise
        rt = cls(settings, db, bus, engine, auth, inventory, tasks, Archive(db), audit, roles, gate, approvals, secrets,
                 host_keys, ssh_key, kind)
        if kind == "server":
            rt._background.append(asyncio.create_task(rt._purge_audit()))
            if settings.audit.anchor_syslog or settings.audit.anchor_webhook:
                from smallyi.audit import publish  # the anchor's copies off the machine

                assert audit.anchor is not None
                rt._background.append(asyncio.create_task(publish.run(audit.anchor, settings.audit)))
            from smallyi.sop import automation  # SOPs, schedules, notifications (server only)
            rt._background.append(await automation.attach(rt))
            rt._gitops = rt._gitops or rt._open_gitops()  # its pollers start with the server
        return rt

    @property
    def gitops(self) -> GitOpsService:
        """The GitOps service; built on first use outside the server (where it starts with its pollers)."""
        if self._gitops is None:
            self._gitops = self._open_gitops()
        return self._gitops

    def _open_gitops(self) -> GitOpsService:
        from smallyi.gitops.service import GitOpsService
        from smallyi.sop.gitsource import GitSops

        return GitOpsService.open(self.settings, db=self.db, engine=self.engine, inventory=self.inventory,
                                  bus=self.bus, kind=self.kind, background=self._background, audit=self.audit,
                                  sops=GitSops(self.db, self.settings))

    def sealed_stores(self) -> list[Sealed]:
        """Every store holding data encrypted under the master key, for ``secrets rotate`` to re-encrypt all
        of them at once: a store left out here would be unreadable after a rotation."""
        from smallyi.notify.channels import ChannelStore

        return [self.secrets, ChannelStore(self.db, self.settings.notify.channels, self.secrets.box,
                                           redact.shared())]

    def pty_connector(self) -> PtyConnector:
        """A connector for web-terminal shells with the same key and host-key pins as the engine."""
        from smallyi.execution.connectors.pty import PtyConnector

        return PtyConnector(self.settings.ssh, pins=self.host_keys, key_data=self.ssh_key, secrets=self.secrets.get)

    async def apply_config(self, settings: Settings, *, roles: RoleBook, policy: CommandPolicy,
                           ssh_key: bytes | None) -> None:
        """Run on ``settings`` from now on: a reload's, validated, its users synced, the keys that wait for
        a restart kept as they were (``config_changes.merge``). Each part takes what it can use live; what
        is under way keeps what it started with. Changed SSH settings (or key) replace the SSH connector:
        new connections use them, and connections pooled under the old ones are not reused."""
        ssh_changed = settings.ssh != self.settings.ssh or ssh_key != self.ssh_key
        self.settings, self.roles, self.ssh_key = settings, roles, ssh_key
        self.auth.reconfigure(settings.auth, roles)
        self.gate.policy = policy
        self.approvals.ttl = settings.policy.approval_ttl
        replaced: dict[str, Connector] = {}
        if ssh_changed and isinstance(self.engine.connectors.get("ssh"), SSHConnector):
            replaced["ssh"] = SSHConnector(settings.ssh, pins=self.host_keys, key_data=ssh_key,
                                           secrets=self.secrets.get)
        self.engine.reconfigure(settings.ssh, settings.execution, settings.output, connectors=replaced)
        self.tasks.settings = settings
        if self._gitops is not None:
            from smallyi.sop.gitsource import GitSops

            self._gitops.reconfigure(settings)
            if isinstance(self._gitops.sops, GitSops):
                self._gitops.sops.settings = settings
        if self.kind == "server":
            from smallyi.sop import automation

            await automation.reconfigure(self)
        for follow in self.followers:
            follow(self)

    async def _purge_audit(self) -> None:
        """Apply the audit retention now and then every ``audit.purge_interval`` (each purge is recorded; a
        reload's new values apply from the next purge)."""
        if self.settings.audit.retention_days < 180:
            log.warning("audit.retention_days is %d: compliance rules (MLPS 2.0) ask for at least 180",
                        self.settings.audit.retention_days)
        await asyncio.sleep(5.0)
        while True:
            cfg = self.settings.audit
            try:
                await self.audit.purge(older_than_days=cfg.retention_days)
            except StorageError as exc:  # refused (records that do not verify): already logged and recorded
                log.warning("audit: the scheduled purge did not run (%s); it is tried again in %gs",
                            exc.message, cfg.purge_interval)
            except Exception:
                log.exception("audit: the scheduled purge failed; it is tried again in %gs", cfg.purge_interval)
            await asyncio.sleep(cfg.purge_interval)

    async def close(self) -> None:
        for t in self._background:
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
        try:
            if self._gitops is not None:
                await self._gitops.close()
            await self.tasks.close()
            await self.engine.close()
            await self.host_keys.drain()
            await self.audit.flush()
        finally:
            self.auth.close()
            await self.bus.close()  # after the services: their last events and topic ends are sent
            await self.db.close()


def audit_keys(settings: Settings) -> AuditKeys:
    """The audit MAC keys (``audit.mac_key``, its environment variable, or the audit key file)."""
    keys, current, source = keyring.load_audit_keys(settings.audit)
    log.info("audit records are MAC'd with the audit key from %s", source)
    return AuditKeys(keys, current)


async def read_ssh_key(settings: Settings, secrets: SecretStore) -> bytes | None:
    """The config's SSH private key from the secret store (``ssh.private_key_secret``), else None."""
    name = settings.ssh.private_key_secret
    if not name:
        return None
    try:
        return (await secrets.get(name)).encode()
    except NotFound:
        raise ConfigError(f"ssh.private_key_secret: no secret {name!r}; store the key with "
                          f"`small-yi secrets set {name} --kind ssh-key --file KEYFILE`") from None
