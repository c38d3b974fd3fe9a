"""Replicas starting together migrate one after the other: none fails on a half-made schema."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from devsupport.postgres_server import PostgresServer
from devsupport.procs import REPO_ROOT, child_env

REPLICAS = 3
MIGRATE = "import sys; from services.status.migrate import run_migrations; run_migrations(sys.argv[1])"


def migrate_concurrently(url: str) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url],
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(REPLICAS)
    ]
    try:
        outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert [p.returncode for p in processes] == [0] * REPLICAS, "\n".join(outputs)


VERSIONS = "SELECT version_num FROM alembic_version_status"


@pytest.mark.timeout(180)
async def test_concurrent_upgrades_of_a_fresh_postgresql_database_all_succeed(postgres_server: PostgresServer) -> None:
    name = f"migrate_race_{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(migrate_concurrently, postgres_server.create_database(name))
    connection = await asyncpg.connect(postgres_server.dsn(name))
    try:
        assert len(await connection.fetch(VERSIONS)) == 1
    finally:
        await connection.close()


@pytest.mark.timeout(180)
def test_concurrent_upgrades_of_a_fresh_sqlite_file_all_succeed(tmp_path: Path) -> None:
    database = tmp_path / "data" / "switchboard.db"
    migrate_concurrently(f"sqlite:///{database}")
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert len(connection.execute(VERSIONS).fetchall()) == 1
