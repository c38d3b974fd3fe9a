"""A media item as the service knows it, and the rules of its life cycle.

States: ``pending`` (stored, waiting for its processing job) → ``processing`` → ``ready`` or
``failed``; any state → ``deleted`` (soft: bytes stay until cleanup purges them). A retried
job goes from ``processing`` back to ``processing`` (a new attempt); a failed media can be
queued again (``pending``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime.errors import FailedPrecondition
from services.media.domain.variants import VariantSpec

__all__ = ["MediaRecord", "MediaState", "StoredVariant", "check_transition", "original_key", "variant_key"]


class MediaState(enum.Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


_ALLOWED: Mapping[MediaState, frozenset[MediaState]] = {
    MediaState.PENDING: frozenset({MediaState.PROCESSING, MediaState.FAILED, MediaState.DELETED}),
    MediaState.PROCESSING: frozenset({MediaState.PROCESSING, MediaState.READY, MediaState.FAILED, MediaState.DELETED}),
    MediaState.READY: frozenset({MediaState.PROCESSING, MediaState.DELETED}),
    MediaState.FAILED: frozenset({MediaState.PENDING, MediaState.DELETED}),
    MediaState.DELETED: frozenset(),
}


def check_transition(media_id: str, old: MediaState, new: MediaState) -> None:
    """Raise FailedPrecondition when ``old`` → ``new`` is not a step of the life cycle."""
    if new not in _ALLOWED[old]:
        raise FailedPrecondition(
            f"media {media_id} is {old.value}: cannot become {new.value}",
            details={"mediaId": media_id, "state": old.value},
        )


@dataclass(frozen=True, slots=True)
class StoredVariant:
    name: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    storage_key: str
    etag: str = ""
    """The MD5 of the bytes (hex): changes whenever they do."""


@dataclass(frozen=True, slots=True)
class MediaRecord:
    media_id: str
    state: MediaState
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    owner_id: str
    entity_type: str
    specs: tuple[VariantSpec, ...]
    keep_metadata: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    width: int = 0
    height: int = 0
    variants: tuple[StoredVariant, ...] = ()
    synced_to_s3: bool = False
    error: str = ""
    job_id: str = ""
    created_at_ms: int = 0
    updated_at_ms: int = 0

    @property
    def original_key(self) -> str:
        return original_key(self.media_id)

    def variant(self, name: str) -> StoredVariant | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def objects(self) -> tuple[tuple[str, str], ...]:
        """Every stored object of this media, ``(key, content type)``: the original, then each variant."""
        return ((self.original_key, self.content_type), *((v.storage_key, v.content_type) for v in self.variants))


def original_key(media_id: str) -> str:
    """Where an upload's original bytes are stored."""
    return f"originals/{media_id}"


_EXTENSIONS = {"image/webp": "webp", "image/jpeg": "jpg", "image/png": "png"}


def variant_key(media_id: str, name: str, content_type: str) -> str:
    """Where a rendered variant is stored."""
    return f"variants/{media_id}/{name}.{_EXTENSIONS.get(content_type, 'bin')}"
