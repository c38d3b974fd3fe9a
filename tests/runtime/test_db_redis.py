"""Engine and client factories talk to the real thing, and their health checks notice an outage."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from devsupport.ports import free_port
from runtime.db import create_engine, db_health_check
from runtime.health import run_check
from runtime.redis import create_redis, redis_health_check


async def test_sqlite_file_is_created_under_its_directory(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/nested/dir/switchboard.db")
    try:
        assert await run_check(db_health_check(engine), 2) is None
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        assert mode == "wal"
        assert (tmp_path / "nested" / "dir" / "switchboard.db").exists()
    finally:
        await engine.dispose()


async def test_postgres_scheme_is_rewritten_to_asyncpg() -> None:
    engine = create_engine("postgres://user:pw@127.0.0.1:1/none")
    try:
        assert engine.url.drivername == "postgresql+asyncpg"
    finally:
        await engine.dispose()


async def test_db_health_check_fails_when_postgres_is_unreachable() -> None:
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    try:
        reason = await run_check(db_health_check(engine), 3)
    finally:
        await engine.dispose()
    assert reason is not None


async def test_redis_health_check_passes_against_real_redis(redis_url: str) -> None:
    client = create_redis(redis_url)
    try:
        assert await run_check(redis_health_check(client), 2) is None
    finally:
        await client.aclose()


async def test_redis_health_check_fails_on_a_closed_port() -> None:
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    try:
        reason = await run_check(redis_health_check(client), 2)
    finally:
        await client.aclose()
    assert reason is not None
    assert "Connection" in reason


def test_unknown_database_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="postgresql"):
        create_engine("mysql://x@y/z")
