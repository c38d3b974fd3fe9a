"""Alembic environment of the auth tables (URL from Config, else from CommonSettings)."""

from __future__ import annotations

from runtime.auth.store import metadata
from runtime.migrations import run_env


def _default_url() -> str:
    from runtime.config import CommonSettings

    return CommonSettings().auth_store_url


run_env(metadata, default_url=_default_url, default_version_table="alembic_version_auth")
