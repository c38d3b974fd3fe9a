"""Media service settings (the gRPC service and its worker), read from the environment once at start."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator

from runtime.config import CommonSettings
from runtime.queue.schedule import Schedule
from services.media.domain.variants import VariantSpec, parse_presets


class MediaSettings(CommonSettings):
    media_max_pixels: int = Field(default=50_000_000, ge=1)
    media_presets: str = ""
    """JSON ``{"entity_type": [{"name", "width", "height", "fit", "format", "quality"}, ...]}``:
    overrides or extends the built-in presets (``default``, ``user_avatar``, ``company_photo``)."""
    media_migrate_on_start: bool = True
    media_processing_concurrency: int = Field(default=5, ge=1, le=1000)
    media_processing_attempts: int = Field(default=3, ge=1, le=100)
    media_processing_backoff_base_s: float = Field(default=1.0, ge=0)
    media_processing_backoff_cap_s: float = Field(default=60.0, ge=0)
    media_processing_timeout_s: float = Field(default=120.0, gt=0)
    media_sync_concurrency: int = Field(default=5, ge=1, le=1000)
    media_sync_attempts: int = Field(default=3, ge=1, le=100)
    media_watermark_concurrency: int = Field(default=3, ge=1, le=1000)
    media_watermark_attempts: int = Field(default=3, ge=1, le=100)
    media_queue_metrics_interval_s: float = Field(default=5.0, gt=0)
    """How often the service reads the queue sizes into ``media_*_queue_size`` (and republishes
    its spool's marker for the other replicas' queue stats)."""
    media_spool_path: Path | None = None
    """The service's durable spool of jobs enqueued while Redis is unreachable (SQLite); default
    ``DATA_DIR/media/spool.sqlite3``. Each replica needs its own file on a local disk: SQLite's
    WAL is not safe on a network filesystem (k8s/ puts it on the pod's own emptyDir)."""
    media_presign_expires_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    """How long a variant's presigned S3 URL stays valid (once the media is synced)."""
    media_retention_days: int = Field(default=30, ge=0, le=36_500)
    """Soft-deleted media older than this are purged (local store, S3, record) by the daily cleanup."""
    media_cleanup_cron: str = "0 3 * * *"
    """When the cleanup runs (cron, UTC), on the media-sync workers: once a tick however many run."""
    media_pending_requeue_after_s: int = Field(default=600, ge=1)
    """A media still ``pending`` this long after its upload whose processing job is not queued
    (lost with a deleted pod's spool) gets the job again from the pending sweep."""
    media_pending_sweep_cron: str = "*/5 * * * *"
    """When the pending sweep runs (cron, UTC), on the media-processing workers: once a tick however many run."""
    media_cleanup_inline_max: int = Field(default=200, ge=0, le=100_000)
    """A Cleanup call that finds more media than this to purge queues the purge as a job on
    media-sync (answering its job id) instead of purging within the call."""
    media_temp_max_age_s: int = Field(default=24 * 3600, ge=60)
    """Files under the store's tmp/ older than this are left over by an interrupted upload: removed."""
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    aws_access_key_id: str = ""
    aws_secret_access_key: str = ""
    aws_region: str = "us-east-1"

    model_config = CommonSettings.model_config | {"ignored_types": (cached_property,)}

    @field_validator("media_cleanup_cron", "media_pending_sweep_cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        Schedule("media-schedule", value, "job")  # raises ValueError naming the problem
        return value

    @field_validator("media_presets")
    @classmethod
    def _presets_parse(cls, value: str) -> str:
        parse_presets(value)  # raises ValueError naming the problem
        return value

    @cached_property
    def presets(self) -> dict[str, tuple[VariantSpec, ...]]:
        return parse_presets(self.media_presets)

    def worker_environment(self) -> dict[str, str]:
        """The variables that rebuild these settings in another process (tests, benchmarks)."""
        own = {
            k.upper(): str(v)
            for k, v in self.model_dump().items()
            if k.startswith(("media_", "s3_", "aws_")) and v is not None
        }
        common = {"REDIS_URL": self.redis_url, "DATA_DIR": str(self.data_dir), "MEDIA_ADDR": self.media_addr}
        if self.database_url:
            common["DATABASE_URL"] = self.database_url
        return {**common, **own}
