"""Prometheus metrics of the media service and its workers (names as the dashboards expect)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
WATERMARK_JOBS = Counter(
    "media_watermark_jobs_total", "Watermark jobs by outcome (completed|failed|retried)", ["status"]
)

# The queue sizes are read from the queue layer by the media service (services.media.queue_stats),
# every MEDIA_QUEUE_METRICS_INTERVAL_S; a worker process exports them as 0 (sum or max them).
PROCESSING_QUEUE_SIZE = Gauge(
    "media_processing_queue_size", "media-processing jobs waiting for a worker (waiting, delayed, paused)"
)
SYNC_QUEUE_SIZE = Gauge("media_sync_queue_size", "media-sync jobs waiting for a worker (waiting, delayed, paused)")
WATERMARK_QUEUE_SIZE = Gauge(
    "media_watermark_queue_size", "media-watermark jobs waiting for a worker (waiting, delayed, paused)"
)
