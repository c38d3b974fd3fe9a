"""The notify service's Alembic migrations build exactly the tables its code declares (a column, an
index or a constraint added to ``tables.py`` without a migration fails here), on SQLite and on
PostgreSQL, and applying them again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notify.migrate import ALEMBIC_INI
from services.notify.tables import Base
from tests.support.migrations import BACKENDS, migrated_differences


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_migrations_build_exactly_the_declared_tables(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert await migrated_differences(ALEMBIC_INI, Base.metadata, backend, tmp_path, request) == []
