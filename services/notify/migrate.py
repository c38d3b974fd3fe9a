"""The notify service's Alembic migrations: ``python -m services.notify.migrate`` applies them."""

from __future__ import annotations

from pathlib import Path

from runtime.config import load_settings
from runtime.migrations import run_migrations
from services.notify.settings import NotifySettings

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"

if __name__ == "__main__":
    run_migrations(ALEMBIC_INI, load_settings(NotifySettings).async_database_url)
