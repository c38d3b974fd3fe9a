"""Apply the status service's Alembic migrations (at service start and from the local runner).

``run_migrations(url)`` is synchronous (Alembic's env.py runs its own event loop); inside a
running loop call ``await upgrade(url)``, which runs it in a worker thread.
"""

from __future__ import annotations

from pathlib import Path

from runtime import migrations

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"


def run_migrations(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent)."""
    migrations.run_migrations(ALEMBIC_INI, url, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    await migrations.upgrade(ALEMBIC_INI, url, revision)
