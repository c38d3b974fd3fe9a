"""Alembic environment of the auth tables (async engine; URL set by runtime.auth.migrate)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from runtime.auth.store import metadata
from runtime.db import create_engine

config = context.config
VERSION_TABLE = config.get_main_option("version_table") or "alembic_version_auth"


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from runtime.config import CommonSettings

    return CommonSettings().async_database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
