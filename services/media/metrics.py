"""Prometheus metrics of the media service and its workers (names as the dashboards expect)."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

PROCESSING_JOBS = Counter(
    "media_processing_jobs_total", "Media processing attempts by outcome (ready|failed|retried)", ["status"]
)
PROCESSING_SECONDS = Histogram(
    "media_processing_duration_seconds",
    "Time from reading an original to its variants stored",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120),
)
SYNC_JOBS = Counter(
    "media_sync_jobs_total", "S3 sync jobs by outcome (completed|failed|skipped) and operation", ["status", "operation"]
)
PENDING_REQUEUED = Counter(
    "media_pending_requeued_total",
    "Pending media whose lost processing job the pending sweep enqueued again (or ran again when it had finished)",
)
WATERMARK_JOBS = Counter(
    "media_watermark_jobs_total", "Watermark jobs by outcome (completed|failed|retried)", ["status"]
)

# The queue sizes are measured by the media service (services.media.queue_stats), which reads the
# queue layer every MEDIA_QUEUE_METRICS_INTERVAL_S, and only that process exports them
# (``export_queue_sizes``): a worker process measures nothing, so it has no such gauges rather than zeros.
PROCESSING_QUEUE_SIZE = Gauge(
    "media_processing_queue_size",
    "media-processing jobs waiting for a worker (waiting, delayed, paused)",
    registry=None,
)
SYNC_QUEUE_SIZE = Gauge(
    "media_sync_queue_size", "media-sync jobs waiting for a worker (waiting, delayed, paused)", registry=None
)
WATERMARK_QUEUE_SIZE = Gauge(
    "media_watermark_queue_size", "media-watermark jobs waiting for a worker (waiting, delayed, paused)", registry=None
)
_QUEUE_SIZES = (PROCESSING_QUEUE_SIZE, SYNC_QUEUE_SIZE, WATERMARK_QUEUE_SIZE)
_exported = False


def export_queue_sizes() -> None:
    """Put the queue-size gauges in this process's registry (once; later calls do nothing)."""
    global _exported
    if not _exported:
        for gauge in _QUEUE_SIZES:
            REGISTRY.register(gauge)
        _exported = True
