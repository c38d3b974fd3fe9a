"""SQLAlchemy async engine from ``DATABASE_URL``, and the health check that queries it.

::

    engine = create_engine(settings.async_database_url)
    sessions = session_factory(engine)
    checks = {"db": db_health_check(engine)}
    ...
    await engine.dispose()     # a shutdown hook

``DATABASE_URL`` unset means a SQLite file ``<DATA_DIR>/switchboard.db`` (through aiosqlite);
``postgres://`` and ``postgresql://`` are rewritten to ``postgresql+asyncpg://``
(:func:`runtime.config.normalize_database_url`). SQLite connections run in WAL mode with
foreign keys on and a busy timeout, so a worker and a service can share the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from runtime.config import normalize_database_url
from runtime.health import HealthCheck

__all__ = ["create_engine", "db_health_check", "session_factory"]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    """An async engine for ``url``; a SQLite file's directory is created when missing."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": 5},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no lazy reload in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def db_health_check(engine: AsyncEngine) -> HealthCheck:
    """A health check that passes when ``SELECT 1`` answers."""

    async def select_one() -> bool:
        async with engine.connect() as connection:
            return (await connection.execute(text("SELECT 1"))).scalar() == 1

    return select_one
