"""Alembic environment of the notify service (URL from Config, else from NotifySettings)."""

from __future__ import annotations

from runtime.migrations import run_env
from services.notify.tables import Base


def _default_url() -> str:
    from services.notify.settings import NotifySettings

    return NotifySettings().async_database_url


run_env(Base.metadata, default_url=_default_url, default_version_table="alembic_version_notify")
