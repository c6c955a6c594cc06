"""Database engine and sessions: SQLite in WAL mode by default, PostgreSQL by URL.

``open_database`` checks the database answers and brings its schema to the newest Alembic revision,
translating driver errors into one StorageError that names the URL (password hidden).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from smallyi.config import Settings, redact_url
from smallyi.errors import StorageError
from smallyi.storage import private

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


class Database:
    """An engine plus its session factory; one per process."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.session = async_sessionmaker(engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def close(self) -> None:
        await self.engine.dispose()


def make_engine(url: str) -> AsyncEngine:
    """An async engine; on SQLite with WAL, a busy timeout and foreign keys on every connection."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            sqlite_files(path)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    return engine


def sqlite_files(path: str) -> None:
    """The SQLite file made 0600 (its folder 0700) before SQLite opens it, and any that an older version
    left wider narrowed: it holds every bcrypt hash and the archive. SQLite gives the ``-wal`` and
    ``-shm`` files it makes the main file's mode, so they are 0600 from their creation too."""
    private.make_file(path)
    for suffix in ("", "-wal", "-shm", "-journal"):
        private.narrow(path + suffix)


async def open_database(settings: Settings, *, upgrade: bool = True) -> Database:
    """Connect, check the database answers, and (by default) migrate it to the newest schema."""
    url = settings.database_url
    try:
        engine = make_engine(url)
    except OSError as exc:
        raise StorageError(f"database {redact_url(settings.database.source)} cannot be created: "
                           f"{exc.strerror or exc}; check database.source in the config") from None
    db = Database(engine, url)
    try:
        async with engine.begin() as conn:
            if upgrade:
                await conn.run_sync(_upgrade)
            else:
                await conn.run_sync(_check_current)
    except (OperationalError, DBAPIError, OSError) as exc:
        await engine.dispose()
        raise StorageError(
            f"database {redact_url(settings.database.source)} cannot be used: {_reason(exc)}; "
            "check database.source in the config and that the server is running"
        ) from None
    except StorageError:
        await engine.dispose()
        raise
    return db


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _upgrade(conn: Connection) -> None:
    if _at_heads(conn):
        return  # the common case, every CLI command: no need to load Alembic (a fifth of `run`'s start-up)
    # Alembic logs each plugin and step at INFO (a dozen lines on a first start): one line of ours says it
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)
    try:
        from alembic import command

        before = _current_revision(conn) if inspect(conn).has_table("alembic_version") else ""
        command.upgrade(_alembic_config(conn), "heads")
        after = _current_revision(conn)
    finally:
        alembic_log.setLevel(level)
    log.info("database schema upgraded from %s to %s", before or "empty", after)


_REVISION = re.compile(r"""^revision(?:\s*:[^=]+)?\s*=\s*["']([^"']+)["']""", re.M)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]+)?\s*=\s*(.+)$", re.M)


@functools.cache
def _script_heads() -> frozenset[str] | None:
    """The newest revisions among the shipped migrations, read from their files; None if unsure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if rev is None or down is None:
            return None  # a form this reader does not know: let Alembic decide
        revisions.add(rev.group(1))
        parents.update(re.findall(r"""["']([^"']+)["']""", down.group(1)))
    heads = revisions - parents
    return frozenset(heads) if heads else None


def _at_heads(conn: Connection) -> bool:
    """True if the database is stamped with exactly the shipped heads (nothing to upgrade)."""
    heads = _script_heads()
    if heads is None or not inspect(conn).has_table("alembic_version"):
        return False
    current = {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    return current == heads


def _check_current(conn: Connection) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(conn)).get_heads())
    current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        raise StorageError(
            f"database schema is at revision {', '.join(sorted(current)) or 'none'}, this small-yi needs "
            f"{', '.join(sorted(heads))}; run `small-yi db upgrade` (serve does it on start)"
        )


async def upgrade(settings: Settings) -> str:
    """Migrate the configured database to the newest schema; returns the revision now current."""
    db = await open_database(settings, upgrade=True)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(_current_revision)
    finally:
        await db.close()


def _current_revision(conn: Connection) -> str:
    from alembic.runtime.migration import MigrationContext

    return ", ".join(sorted(MigrationContext.configure(conn).get_current_heads()))


def run_sync(coro: Any) -> Any:
    """Run a coroutine from synchronous CLI code."""
    return asyncio.run(coro)
