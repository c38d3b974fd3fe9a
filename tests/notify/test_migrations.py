"""The notify service's Alembic migrations build exactly the tables its code declares (a column, an
index or a constraint added to ``tables.py`` without a migration fails here), on SQLite and on
PostgreSQL, and applying them again changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from runtime.db import create_engine
from runtime.migrations import upgrade
from services.notify.migrate import ALEMBIC_INI
from services.notify.settings import NotifySettings
from services.notify.tables import Base


def differences(connection: Connection) -> list[Any]:
    def ours(name: str | None, type_: str, parent_names: Any) -> bool:
        # The database may hold other services' tables (PostgreSQL is shared by the tests).
        return type_ != "table" or name in Base.metadata.tables

    context = MigrationContext.configure(connection, opts={"include_name": ours, "compare_type": True})
    return list(compare_metadata(context, Base.metadata))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_migrations_build_exactly_the_declared_tables(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        f"sqlite:///{tmp_path / 'notify.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    url = NotifySettings(database_url=database_url, data_dir=tmp_path).async_database_url
    await upgrade(ALEMBIC_INI, url)
    await upgrade(ALEMBIC_INI, url)  # at head already: nothing to do
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
