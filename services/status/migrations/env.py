"""Alembic environment of the status service (URL from Config, else from StatusSettings)."""

from __future__ import annotations

from runtime.migrations import run_env
from services.status.db import Base


def _default_url() -> str:
    from services.status.settings import StatusSettings

    return StatusSettings().async_database_url


run_env(Base.metadata, default_url=_default_url)
