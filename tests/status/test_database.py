"""The status tables on SQLite and PostgreSQL: migrations, write-through of a resync, counts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, inspect
from switchboard.status.v1 import status_pb2

from devsupport.procs import REPO_ROOT, child_env
from devsupport.status_batches import operator
from runtime.db import create_engine
from services.status.db import ConfigWriter, QueueMemberRow, QueueRow, StatusDatabase
from services.status.migrate import run_migrations, upgrade

pb = status_pb2


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[StatusDatabase]:
    await upgrade(database_url)
    engine = create_engine(database_url)
    db = StatusDatabase(engine)
    async with engine.begin() as connection:  # PostgreSQL is shared by the tests: start empty
        await connection.execute(delete(QueueMemberRow))
        await connection.execute(delete(QueueRow))
    yield db
    await engine.dispose()


async def test_migrations_create_both_tables_and_are_idempotent(database_url: str) -> None:
    await upgrade(database_url)
    await upgrade(database_url)
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    assert {"queues", "queue_members", "alembic_version_status"} <= tables


async def test_replace_makes_the_tables_hold_exactly_the_resync(database: StatusDatabase) -> None:
    await database.replace(
        "pbx1",
        [pb.Queue(name="sales", strategy="ringall", max=10), pb.Queue(name="old")],
        [operator("sales", "PJSIP/1"), operator("old", "PJSIP/2")],
    )
    await database.replace(
        "pbx1",
        [pb.Queue(name="sales", strategy="rrmemory", service_level=30)],
        [
            operator("sales", "PJSIP/1", paused=True, paused_reason="break", penalty=3, status=pb.MEMBER_STATUS_BUSY),
            operator("sales", "Local/9@agents", membership=pb.MEMBERSHIP_DYNAMIC),
        ],
    )
    config = await database.load()
    assert [(q.name, q.strategy, q.service_level) for q in config.queues] == [("sales", "rrmemory", 30)]
    rows = {o.member_id: o for o in config.operators}
    assert set(rows) == {"PJSIP/1", "Local/9@agents"}
    assert rows["PJSIP/1"].paused
    assert rows["PJSIP/1"].paused_reason == "break"
    assert rows["PJSIP/1"].penalty == 3
    assert rows["PJSIP/1"].status == pb.MEMBER_STATUS_UNKNOWN  # live device state is never stored
    assert rows["Local/9@agents"].membership == pb.MEMBERSHIP_DYNAMIC
    assert await database.counts() == (2, 1)


async def test_config_writer_coalesces_bursts_into_the_latest(database: StatusDatabase) -> None:
    writer = ConfigWriter(database)
    for i in range(20):
        writer.submit("pbx1", [pb.Queue(name=f"q{i}")], [operator(f"q{i}", "PJSIP/1")])
    assert await writer.flush(10.0)
    await writer.stop()
    config = await database.load()
    assert [q.name for q in config.queues] == ["q19"]
    assert writer.written < 20


async def test_a_replace_keeps_the_configuration_of_other_sources(database: StatusDatabase) -> None:
    await database.replace(
        "pbx1",
        [pb.Queue(name=f"q{i}") for i in range(4)],
        [operator(f"q{i % 4}", f"PJSIP/{i}") for i in range(13)],
    )
    await database.replace("pbx-forged", [pb.Queue(name="fake")], [])
    assert await database.counts() == (13, 5)
    grouped = await database.load_by_source()
    assert sorted(grouped) == ["pbx-forged", "pbx1"]
    assert len(grouped["pbx1"].operators) == 13
    await database.replace("pbx-forged", [], [])
    assert await database.counts() == (13, 4)


async def test_a_queue_another_source_now_reports_changes_hands(database: StatusDatabase) -> None:
    await database.replace("pbx1", [pb.Queue(name="sales", strategy="ringall")], [operator("sales", "PJSIP/1")])
    await database.replace("pbx2", [pb.Queue(name="sales", strategy="rrmemory")], [operator("sales", "PJSIP/1")])
    grouped = await database.load_by_source()
    assert [q.strategy for q in grouped["pbx2"].queues] == ["rrmemory"]
    assert "pbx1" not in grouped


async def test_config_writer_keeps_each_sources_latest(database: StatusDatabase) -> None:
    writer = ConfigWriter(database)
    writer.submit("pbx1", [pb.Queue(name="a")], [])
    writer.submit("pbx2", [pb.Queue(name="b")], [])
    writer.submit("pbx1", [pb.Queue(name="c")], [])
    assert await writer.flush(10.0)
    await writer.stop()
    config = await database.load()
    assert sorted(q.name for q in config.queues) == ["b", "c"]


def test_alembic_command_line_uses_the_service_settings(tmp_path: object, sqlite_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "services/status/alembic.ini", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=child_env({"DATABASE_URL": sqlite_url}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    run_migrations(sqlite_url)  # already at head: nothing to do, no error
