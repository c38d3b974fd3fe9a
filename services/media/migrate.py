"""Apply the media service's Alembic migrations (at service and worker start)."""

from __future__ import annotations

from pathlib import Path

from runtime import migrations

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"


def run_migrations(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent)."""
    migrations.run_migrations(ALEMBIC_INI, url, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    await migrations.upgrade(ALEMBIC_INI, url, revision)
