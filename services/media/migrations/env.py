"""Alembic environment of the media service (URL from Config, else from MediaSettings)."""

from __future__ import annotations

from runtime.migrations import run_env
from services.media.db import Base


def _default_url() -> str:
    from services.media.settings import MediaSettings

    return MediaSettings().async_database_url


run_env(Base.metadata, default_url=_default_url)
