"""Alembic for a service's own tables: apply them, and the body of the service's ``env.py``.

Each service keeps its migrations beside its code (``services/<name>/migrations``, with an
``alembic.ini`` naming its own version table, so services sharing one database never touch each
other's history).

``run_migrations(ini, url)`` is synchronous (Alembic's env.py runs its own event loop); inside a
running loop ``await upgrade(ini, url)`` runs it in a worker thread. A service's ``env.py`` can be
two lines::

    from runtime.migrations import run_env
    run_env(Base.metadata, default_url=lambda: MediaSettings().async_database_url)

Replicas that start together never race ``alembic upgrade``: on PostgreSQL the migration
transaction first takes an advisory lock keyed by the version table (the second replica then
reads the version the first committed and has nothing left to do); a SQLite file's migrations
run under an exclusive lock on ``<file>.migrate-lock`` beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection, make_url

from runtime.config import normalize_database_url
from runtime.db import create_engine

__all__ = ["alembic_config", "run_env", "run_migrations", "upgrade"]


def alembic_config(ini: Path, url: str) -> Config:
    config = Config(str(ini))
    # ConfigParser interpolation: a literal % in a URL (escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def run_migrations(ini: Path, url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent, safe to run concurrently)."""
    with _sqlite_file_lock(url):
        command.upgrade(alembic_config(ini, url), revision)


@contextlib.contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        yield
        return
    database = Path(parsed.database)
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def upgrade(ini: Path, url: str, revision: str = "head") -> None:
    await asyncio.to_thread(run_migrations, ini, url, revision)


def run_env(
    metadata: MetaData, *, default_url: Callable[[], str], default_version_table: str = "alembic_version"
) -> None:
    """The body of a service's ``env.py``: online (async engine) or offline (SQL script).

    ``sqlalchemy.url`` set on the Config (what :func:`run_migrations` does) wins; otherwise
    ``default_url()`` (the service's settings: DATABASE_URL, default SQLite under DATA_DIR).
    Each migration chain keeps its own version table (``version_table`` in its alembic.ini).
    """
    config = context.config
    version_table = config.get_main_option("version_table") or default_version_table
    url = config.get_main_option("sqlalchemy.url") or default_url()

    def configure(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Held until this transaction commits; the version is read after it is granted.
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": version_table})
            context.run_migrations()

    async def online() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(configure)
                await connection.commit()
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, version_table=version_table, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(online())
