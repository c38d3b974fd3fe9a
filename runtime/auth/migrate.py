"""Apply the auth tables' Alembic migrations (version table ``alembic_version_auth``).

They live beside the code that reads them, in runtime/auth, because every service verifies API
keys from the same DATABASE_URL; the status service's own tables keep their own chain. A
database already at :data:`HEAD` is recognised with one query, without loading Alembic.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from runtime.db import create_engine

__all__ = ["HEAD", "run_migrations", "upgrade"]

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
HEAD = "auth_0001"
"""The newest revision under migrations/versions (a test checks they agree)."""


def run_migrations(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent; synchronous, runs its own loop).

    Through :func:`runtime.migrations.run_migrations`, so processes starting together on one SQLite
    file (two gateways under ``make drill``) take turns instead of racing ``CREATE TABLE``."""
    from runtime import migrations

    migrations.run_migrations(ALEMBIC_INI, url, revision)


async def _current(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(sa.text("SELECT version_num FROM alembic_version_auth"))).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    if revision == "head" and await _current(url) == HEAD:
        return
    await asyncio.to_thread(run_migrations, url, revision)
