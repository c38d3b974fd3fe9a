"""Settings of the status service (environment variables, read once in ``__main__``)."""

from __future__ import annotations

from pydantic import Field

from runtime.config import CommonSettings
from services.status import keys


class StatusSettings(CommonSettings):
    """``CommonSettings`` plus the status service's own knobs (env var = upper-case field name)."""

    status_live_ttl_seconds: int = Field(default=keys.LIVE_TTL_SECONDS, ge=10, le=86_400)
    """TTL of the live Redis keys, refreshed by every batch (heartbeats included)."""
    status_stream_maxlen: int = Field(default=keys.STREAM_MAXLEN, ge=100, le=10_000_000)
    status_watch_queue_size: int = Field(default=256, ge=4, le=100_000)
    """Change sets buffered per watcher before it is skipped ahead with a fresh snapshot."""
    status_watch_heartbeat_seconds: float = Field(default=0.5, gt=0.0, le=60.0)
    """A watch that asked for freshness events gets one after this long without any other message."""
    status_ingest_read_ahead_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    """Serialized bytes of Ingest batches one stream may have read ahead of the group being applied."""
    status_resync_timeout_seconds: float = Field(default=1.0, gt=0.0, le=30.0)
    """Deadline of the best-effort IngestControl.RequestResync call made by Resync."""
    status_migrate_on_start: bool = True
    """Apply the Alembic migrations before serving."""
