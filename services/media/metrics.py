"""Prometheus metrics of the media service and its workers (names as the dashboards expect)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
