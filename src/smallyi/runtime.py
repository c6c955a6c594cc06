"""The running parts of small-yi, built once per process from settings: the server and the CLI share it.

``Runtime.open`` connects and migrates the database, syncs config users, registers the built-in
``local`` host, starts the engine and the task service; ``close`` stops them in reverse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from smallyi.auth.service import AuthService
from smallyi.bus.memory import MemoryBus
from smallyi.config import Settings
from smallyi.execution.engine import Engine
from smallyi.inventory.service import InventoryService
from smallyi.storage.db import Database, open_database
from smallyi.tasks.queries import Archive
from smallyi.tasks.service import TaskService, runner_id

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: MemoryBus
    engine: Engine
    auth: AuthService
    inventory: InventoryService
    tasks: TaskService
    archive: Archive

    @classmethod
    async def open(cls, settings: Settings, *, kind: str = "server") -> Runtime:
        """Everything a process needs; ``kind`` is "server" or "cli" (recovery differs)."""
        db = await open_database(settings)
        try:
            auth = AuthService(db, settings.auth)
            await auth.sync_config_users()
            inventory = InventoryService(db)
            await inventory.ensure_local_host()
            bus = MemoryBus()
            engine = Engine(settings.ssh, settings.execution, settings.output)
            tasks = TaskService(
                settings=settings, db=db, bus=bus, engine=engine, inventory=inventory, runner=runner_id(kind)
            )
            if kind == "server":
                await tasks.recover()
        except BaseException:
            await db.close()
            raise
        return cls(settings, db, bus, engine, auth, inventory, tasks, Archive(db))

    async def close(self) -> None:
        try:
            await self.tasks.close()
            await self.engine.close()
        finally:
            await self.db.close()
