"""The media service's own Alembic migrations build exactly the tables its code declares (a column,
an index or a constraint added to ``db.py`` without a migration fails here), on SQLite and on
PostgreSQL (the database the status service uses), and applying them again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.media.db import Base
from services.media.migrate import ALEMBIC_INI
from tests.support.migrations import BACKENDS, migrated_differences


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_migrations_build_exactly_the_declared_tables(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert await migrated_differences(ALEMBIC_INI, Base.metadata, backend, tmp_path, request) == []
