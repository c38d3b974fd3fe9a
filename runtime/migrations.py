"""Apply a service's Alembic migrations, given its alembic.ini and a database URL.

``run_migrations(ini, url)`` is synchronous (Alembic's env.py runs its own event loop); inside a
running loop ``await upgrade(ini, url)`` runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from runtime.config import normalize_database_url


def alembic_config(ini: Path, url: str) -> Config:
    config = Config(str(ini))
    # ConfigParser interpolation: a literal % in a URL (escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def run_migrations(ini: Path, url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(ini, url), revision)


async def upgrade(ini: Path, url: str, revision: str = "head") -> None:
    await asyncio.to_thread(run_migrations, ini, url, revision)
