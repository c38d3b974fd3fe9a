"""Settings of the queue admin service (environment variables, read once in ``__main__``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from runtime.config import CommonSettings


class QueueAdminSettings(CommonSettings):
    """``CommonSettings`` plus the queue admin's own knobs (env var = upper-case field name)."""

    queue_admin_spool_path: Path | None = None
    """SQLite spool for enqueues made while Redis is unreachable; default ``DATA_DIR/queue-admin-spool.db``."""
    queue_admin_watch_buffer: int = Field(default=1000, ge=10, le=1_000_000)
    """Events buffered per WatchEvents stream before a slow watcher is cut off (it reconnects)."""

    @property
    def spool_path(self) -> Path:
        return self.queue_admin_spool_path or self.data_dir / "queue-admin-spool.db"
