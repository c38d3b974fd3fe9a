"""The ``/api/admin/media`` answers and SSE events as published schemas (see :mod:`gateway.api_schema`).

They describe what :mod:`gateway.media_json` and :mod:`gateway.routes_media` write.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.api_schema import At, Schema

__all__ = [
    "CleanupResult",
    "Media",
    "MediaDeleted",
    "MediaEventData",
    "MediaQueueStats",
    "SyncQueued",
    "Uploaded",
    "WatermarkQueued",
    "WatermarkRemoved",
]

MediaStateText = Literal["pending", "processing", "ready", "failed", "deleted", "unknown"]


class MediaVariant(Schema):
    name: str
    contentType: str
    width: int
    height: int
    sizeBytes: int
    url: str = Field(description="Where its bytes are: the gateway's variant route, or a presigned S3 URL.")


class Media(Schema):
    mediaId: str
    state: MediaStateText
    filename: str
    contentType: str
    width: int
    height: int
    sizeBytes: int
    sha256: str
    entityType: str
    ownerId: str
    variants: list[MediaVariant]
    syncedToS3: bool
    error: str
    jobId: str
    createdAt: At
    updatedAt: At


class Uploaded(Schema):
    mediaId: str
    jobId: str
    state: MediaStateText


class MediaQueueStats(Schema):
    waiting: int | None = Field(description="null: the media service cannot read Redis (unknown), as below.")
    active: int | None
    completed: int | None
    failed: int | None
    type: Literal["redis", "spool"] = Field(
        description="Where the queue's jobs are: spool while a replica's disk spool holds some not yet in Redis."
    )
    spooled: int = Field(description="Jobs in the replicas' disk spools, not yet in Redis; known without Redis.")


class SyncQueued(Schema):
    jobId: str
    jobIds: list[str]
    queued: int
    operation: Literal["upload", "download", "delete"]


class CleanupResult(Schema):
    deleted: int
    freedBytes: int
    dryRun: bool
    jobId: str = Field(default="", description="Only when the purge was queued (too many media for one call).")
    queued: int = Field(default=0, description="With jobId: how many media the queued purge found.")


class MediaDeleted(Schema):
    mediaId: str
    deleted: bool


class WatermarkQueued(Schema):
    jobId: str
    mediaId: str


class WatermarkRemoved(Schema):
    mediaId: str
    removed: list[str]


class MediaEventData(Schema):
    """The ``media`` SSE event: a media changed state."""

    mediaId: str
    state: MediaStateText
    error: str
    updatedAt: At
