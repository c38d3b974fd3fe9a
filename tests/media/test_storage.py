"""The stores and the records: local files, S3 through moto's server, SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.db import create_engine
from runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.media.db import MediaDatabase, now_ms
from services.media.domain.records import MediaRecord, MediaState, StoredVariant
from services.media.domain.variants import DEFAULT_PRESETS
from services.media.migrate import upgrade
from services.media.store import LocalStore, S3Store, s3_client
from tests.media.support import S3Server


async def test_local_store_round_trip_and_delete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.put_bytes("variants/abc/thumb.webp", b"hello", "image/webp")
    assert await store.get_bytes("variants/abc/thumb.webp") == b"hello"
    info = await store.stat("variants/abc/thumb.webp")
    assert info is not None
    assert (info.size, info.md5) == (5, "5d41402abc4b2a76b9719d911017c592")
    assert await store.delete("variants/abc/thumb.webp") is True
    assert await store.delete("variants/abc/thumb.webp") is False
    assert not (tmp_path / "objects" / "variants" / "abc").exists()
    with pytest.raises(NotFound):
        await store.get_bytes("variants/abc/thumb.webp")


async def test_a_temp_upload_is_moved_into_place(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    temp = store.temp_path()
    temp.write_bytes(b"original")
    await store.put_file("originals/x", temp, "image/jpeg")
    assert not temp.exists()
    assert await store.get_bytes("originals/x") == b"original"


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "", "a/./b"])
async def test_keys_cannot_escape_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidArgument):
        await LocalStore(tmp_path).put_bytes(key, b"x", "image/webp")


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[S3Store]:
    s3_server.reset()
    client = s3_client(s3_server.url, "testing", "testing", "us-east-1")
    client.create_bucket(Bucket="media-test")
    store = S3Store(client, "media-test", prefix="sb/")
    yield store
    store.close()


async def test_s3_store_round_trip_over_http(bucket: S3Store) -> None:
    await bucket.put_bytes("variants/abc/large.webp", b"webp-bytes", "image/webp")
    assert await bucket.get_bytes("variants/abc/large.webp") == b"webp-bytes"
    info = await bucket.stat("variants/abc/large.webp")
    assert info is not None
    assert (info.size, info.md5) == (10, hashlib.md5(b"webp-bytes", usedforsecurity=False).hexdigest())
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(bucket.presigned_url("variants/abc/large.webp"))
    assert response.content == b"webp-bytes"
    assert response.headers["Content-Type"] == "image/webp"
    assert await bucket.delete("variants/abc/large.webp") is True
    assert await bucket.stat("variants/abc/large.webp") is None
    with pytest.raises(NotFound):
        await bucket.get_bytes("variants/abc/large.webp")


def record(media_id: str, **changes: Any) -> MediaRecord:
    now = now_ms()
    base = MediaRecord(
        media_id=media_id,
        state=MediaState.PENDING,
        filename="a.jpg",
        content_type="image/jpeg",
        size_bytes=10,
        sha256="0" * 64,
        owner_id="owner",
        entity_type="",
        specs=DEFAULT_PRESETS["default"],
        created_at_ms=now,
        updated_at_ms=now,
    )
    return dataclasses.replace(base, **changes)


async def check_database(url: str) -> None:
    await upgrade(url)
    await upgrade(url)  # idempotent
    engine = create_engine(url)
    try:
        db = MediaDatabase(engine)
        await db.insert(record("a" * 32))
        moved = await db.transition("a" * 32, MediaState.PROCESSING)
        variant = StoredVariant("thumb", "image/webp", 150, 150, 99, "variants/a/thumb.webp")
        ready = await db.transition("a" * 32, MediaState.READY, variants=(variant,), width=10, height=5)
        assert moved.state is MediaState.PROCESSING
        again = await db.get("a" * 32)
        assert again == ready
        assert again.specs == DEFAULT_PRESETS["default"]
        with pytest.raises(FailedPrecondition):
            await db.transition("a" * 32, MediaState.PENDING)
        assert (await db.find_duplicate("owner", "0" * 64)) == ready
        await db.transition("a" * 32, MediaState.DELETED)
        assert await db.find_duplicate("owner", "0" * 64) is None
    finally:
        await engine.dispose()


async def test_records_on_sqlite(tmp_path: Path) -> None:
    await check_database(f"sqlite:///{tmp_path / 'media.db'}")


async def test_records_on_postgresql(postgres_url: str) -> None:
    await check_database(postgres_url)
