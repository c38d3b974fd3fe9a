"""The request bodies and query enums of ``/api/admin/media/*``, and the proto values they map to.

Each field is bounded here, so a bad one is a 400 naming it before any call to the media
service; the class names are the OpenAPI schema names.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from switchboard.media.v1 import media_pb2

__all__ = [
    "POSITIONS",
    "STATE_VALUES",
    "CleanupBody",
    "MediaStateName",
    "PurgeableState",
    "SyncBody",
    "SyncOperationName",
    "WatermarkBody",
]


class MediaStateName(enum.StrEnum):
    pending = "pending"
    processing = "processing"
    ready = "ready"
    failed = "failed"
    deleted = "deleted"


POSITIONS = {
    "top-left": media_pb2.WATERMARK_POSITION_TOP_LEFT,
    "top-right": media_pb2.WATERMARK_POSITION_TOP_RIGHT,
    "bottom-left": media_pb2.WATERMARK_POSITION_BOTTOM_LEFT,
    "bottom-right": media_pb2.WATERMARK_POSITION_BOTTOM_RIGHT,
    "center": media_pb2.WATERMARK_POSITION_CENTER,
    "tile": media_pb2.WATERMARK_POSITION_TILE,
}


class WatermarkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    watermarkId: str = Field(default="", max_length=64, description="The media id of an uploaded logo.")
    text: str = Field(default="", max_length=200, description="Text instead of a logo.")
    position: Literal["top-left", "top-right", "bottom-left", "bottom-right", "center", "tile"] = "bottom-right"
    opacity: float = Field(default=0.5, ge=0.1, le=1.0)
    scale: float = Field(default=0.25, ge=0.1, le=1.0, description="Watermark width / image width.")
    variants: list[str] = Field(default_factory=list, max_length=16, description="Empty: every variant.")


STATE_VALUES = {
    "pending": media_pb2.MEDIA_STATE_PENDING,
    "processing": media_pb2.MEDIA_STATE_PROCESSING,
    "ready": media_pb2.MEDIA_STATE_READY,
    "failed": media_pb2.MEDIA_STATE_FAILED,
    "deleted": media_pb2.MEDIA_STATE_DELETED,
}


class SyncOperationName(enum.StrEnum):
    upload = "upload"
    download = "download"
    delete = "delete"


class SyncBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mediaIds: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=1000)
    all: bool = Field(default=False, description="Every media the operation applies to (instead of mediaIds).")
    operation: SyncOperationName = Field(
        default=SyncOperationName.upload, description="upload: local → S3; download: S3 → local; delete: the S3 copies."
    )
    deleteSource: bool = Field(default=False, description="Remove the source copies once the copy is verified.")


class PurgeableState(enum.StrEnum):
    deleted = "deleted"
    failed = "failed"


class CleanupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    olderThanDays: int | None = Field(
        default=None, ge=0, le=36_500, description="Media unchanged this long; default MEDIA_RETENTION_DAYS."
    )
    status: PurgeableState | list[PurgeableState] = Field(default=PurgeableState.deleted)
    dryRun: bool = Field(default=False, description="Only count what would be purged.")
