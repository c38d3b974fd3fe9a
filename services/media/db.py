"""The database adapter: one row per media item (table ``media``), in the database the status
service uses (SQLite under DATA_DIR by default, PostgreSQL in production) with its own
migrations (``services/media/migrations``, version table ``alembic_version_media``).

State changes are compare-and-set: :meth:`MediaDatabase.transition` reads the row's state,
checks the life cycle (:func:`services.media.domain.records.check_transition`) and writes only
if the state is still the one it read, so a delete racing a finishing job cannot be undone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.errors import FailedPrecondition, NotFound
from services.media.domain.records import MediaRecord, MediaState, StoredVariant, check_transition
from services.media.domain.variants import Fit, OutputFormat, VariantSpec

__all__ = ["MediaDatabase", "MediaRow", "now_ms"]


def now_ms() -> int:
    return int(time.time() * 1000)


class Base(DeclarativeBase):
    pass


class MediaRow(Base):
    __tablename__ = "media"

    media_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str] = mapped_column(String(64), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(String(128), default="")
    entity_type: Mapped[str] = mapped_column(String(64), default="")
    specs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    keep_metadata: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    synced_to_s3: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str] = mapped_column(String(128), default="")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_media_owner_sha256", "owner_id", "sha256"),
        Index("ix_media_created", "created_at_ms"),
        Index("ix_media_state_updated", "state", "updated_at_ms"),
    )


def _spec_json(spec: VariantSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "width": spec.width,
        "height": spec.height,
        "fit": spec.fit.value,
        "format": spec.format.value,
        "quality": spec.quality,
    }


def _variant_json(v: StoredVariant) -> dict[str, Any]:
    return {
        "name": v.name,
        "contentType": v.content_type,
        "width": v.width,
        "height": v.height,
        "sizeBytes": v.size_bytes,
        "key": v.storage_key,
        "etag": v.etag,
    }


def _row_values(record: MediaRecord) -> dict[str, Any]:
    return {
        "media_id": record.media_id,
        "state": record.state.value,
        "filename": record.filename,
        "content_type": record.content_type,
        "size_bytes": record.size_bytes,
        "sha256": record.sha256,
        "owner_id": record.owner_id,
        "entity_type": record.entity_type,
        "specs": [_spec_json(s) for s in record.specs],
        "keep_metadata": record.keep_metadata,
        "labels": dict(record.labels),
        "width": record.width,
        "height": record.height,
        "variants": [_variant_json(v) for v in record.variants],
        "synced_to_s3": record.synced_to_s3,
        "error": record.error,
        "job_id": record.job_id,
        "created_at_ms": record.created_at_ms,
        "updated_at_ms": record.updated_at_ms,
    }


def _record(row: MediaRow) -> MediaRecord:
    return MediaRecord(
        media_id=row.media_id,
        state=MediaState(row.state),
        filename=row.filename,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        owner_id=row.owner_id,
        entity_type=row.entity_type,
        specs=tuple(
            VariantSpec(s["name"], s["width"], s["height"], Fit(s["fit"]), OutputFormat(s["format"]), s["quality"])
            for s in row.specs
        ),
        keep_metadata=row.keep_metadata,
        labels=dict(row.labels),
        width=row.width,
        height=row.height,
        variants=tuple(
            StoredVariant(
                v["name"], v["contentType"], v["width"], v["height"], v["sizeBytes"], v["key"], v.get("etag", "")
            )
            for v in row.variants
        ),
        synced_to_s3=row.synced_to_s3,
        error=row.error,
        job_id=row.job_id,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
    )


class MediaDatabase:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def insert(self, record: MediaRecord) -> None:
        async with self._sessions.begin() as session:
            await session.execute(insert(MediaRow).values(**_row_values(record)))

    async def remove(self, media_id: str) -> None:
        """Delete the row itself (an upload undone, a purge)."""
        async with self._sessions.begin() as session:
            await session.execute(delete(MediaRow).where(MediaRow.media_id == media_id))

    async def get(self, media_id: str) -> MediaRecord:
        async with self._sessions() as session:
            row = await session.get(MediaRow, media_id)
        if row is None:
            raise NotFound(f"media {media_id} not found", details={"mediaId": media_id})
        return _record(row)

    async def find_duplicate(self, owner_id: str, sha256: str) -> MediaRecord | None:
        """The newest media of ``owner_id`` with these bytes that is not deleted."""
        query = (
            select(MediaRow)
            .where(MediaRow.owner_id == owner_id, MediaRow.sha256 == sha256, MediaRow.state != "deleted")
            .order_by(MediaRow.created_at_ms.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).scalar_one_or_none()
        return None if row is None else _record(row)

    async def list(
        self,
        *,
        entity_type: str = "",
        owner_id: str = "",
        state: MediaState | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> tuple[list[MediaRecord], int]:
        """One page of media, newest first, and how many match in all."""
        conditions = []
        if entity_type:
            conditions.append(MediaRow.entity_type == entity_type)
        if owner_id:
            conditions.append(MediaRow.owner_id == owner_id)
        if state is not None:
            conditions.append(MediaRow.state == state.value)
        query = (
            select(MediaRow)
            .where(*conditions)
            .order_by(MediaRow.created_at_ms.desc(), MediaRow.media_id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
            total = (await session.execute(select(func.count()).select_from(MediaRow).where(*conditions))).scalar_one()
        return [_record(r) for r in rows], int(total)

    async def ids(self, *, state: MediaState, synced_to_s3: bool | None = None) -> tuple[str, ...]:
        """Every media id in ``state`` (and with that S3 flag, when given), oldest first."""
        conditions = [MediaRow.state == state.value]
        if synced_to_s3 is not None:
            conditions.append(MediaRow.synced_to_s3.is_(synced_to_s3))
        query = select(MediaRow.media_id).where(*conditions).order_by(MediaRow.created_at_ms, MediaRow.media_id)
        async with self._sessions() as session:
            return tuple((await session.execute(query)).scalars().all())

    async def older_than(self, states: Sequence[MediaState], before_ms: int, *, limit: int) -> Sequence[MediaRecord]:
        """Up to ``limit`` media in ``states`` last changed at or before ``before_ms``, oldest change first."""
        query = (
            select(MediaRow)
            .where(MediaRow.state.in_([s.value for s in states]), MediaRow.updated_at_ms <= before_ms)
            .order_by(MediaRow.updated_at_ms, MediaRow.media_id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_record(r) for r in rows]

    async def transition(
        self, media_id: str, new_state: MediaState, *, expect: Sequence[MediaState] = (), **changes: Any
    ) -> MediaRecord:
        """Move ``media_id`` to ``new_state`` with ``changes`` (record field names), checked and
        compare-and-set; ``expect`` narrows the states it may come from."""
        current = await self.get(media_id)
        if expect and current.state not in expect:
            raise FailedPrecondition(
                f"media {media_id} is {current.state.value}, not {'/'.join(s.value for s in expect)}",
                details={"mediaId": media_id, "state": current.state.value},
            )
        check_transition(media_id, current.state, new_state)
        updated = replace(current, state=new_state, updated_at_ms=now_ms(), **changes)
        values = {k: v for k, v in _row_values(updated).items() if k in {"state", "updated_at_ms", *changes}}
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(MediaRow)
                .where(MediaRow.media_id == media_id, MediaRow.state == current.state.value)
                .values(**values)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise FailedPrecondition(f"media {media_id} changed state meanwhile", details={"mediaId": media_id})
        return updated

    async def update(self, media_id: str, **changes: Any) -> MediaRecord:
        """Change fields that are not the state (the S3 sync flag, a job id)."""
        updated = replace(await self.get(media_id), updated_at_ms=now_ms(), **changes)
        values = {k: v for k, v in _row_values(updated).items() if k in {"updated_at_ms", *changes}}
        async with self._sessions.begin() as session:
            await session.execute(update(MediaRow).where(MediaRow.media_id == media_id).values(**values))
        return updated

    async def stats(self) -> Mapping[str, Any]:
        query = select(MediaRow.state, func.count(), func.coalesce(func.sum(MediaRow.size_bytes), 0)).group_by(
            MediaRow.state
        )
        synced = select(func.count()).select_from(MediaRow).where(MediaRow.synced_to_s3.is_(True))
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            synced_count = (await session.execute(synced)).scalar_one()
        return {
            "by_state": {state: int(count) for state, count, _ in rows},
            "bytes": sum(int(size) for _, _, size in rows),
            "synced": int(synced_count),
        }
