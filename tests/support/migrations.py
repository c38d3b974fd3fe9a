"""Whether a service's Alembic migrations build exactly the tables its code declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from runtime.config import CommonSettings
from runtime.db import create_engine
from runtime.migrations import upgrade

BACKENDS = ("sqlite", "postgresql")


def differences(connection: Connection, metadata: MetaData) -> list[Any]:
    """Alembic's autogenerate diff of the database behind ``connection`` against ``metadata``,
    over ``metadata``'s tables only (the database may hold other services' tables: the tests share
    PostgreSQL)."""

    def ours(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name in metadata.tables

    context = MigrationContext.configure(connection, opts={"include_name": ours, "compare_type": True})
    return list(compare_metadata(context, metadata))


async def migrated_differences(
    alembic_ini: Path, metadata: MetaData, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> list[Any]:
    """Apply the migrations of ``alembic_ini`` twice (the second finds nothing to do) to a fresh
    SQLite file or the tests' PostgreSQL, and diff the result against ``metadata``."""
    database_url = (
        f"sqlite:///{tmp_path / 'migrated.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    url = CommonSettings(database_url=database_url, data_dir=tmp_path).async_database_url
    await upgrade(alembic_ini, url)
    await upgrade(alembic_ini, url)  # at head already: nothing to do
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            found: list[Any] = await connection.run_sync(differences, metadata)
            return found
    finally:
        await engine.dispose()
