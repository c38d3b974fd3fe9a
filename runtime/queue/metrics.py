"""Prometheus metrics of the queue layer (one set per process, labelled by queue)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS_BY_STATE = Gauge("queue_jobs_by_state", "Jobs in the queue by state", ["queue", "state"])
JOBS_TOTAL = Counter(
    "queue_jobs_total", "Job attempts finished, by outcome (completed|retried|failed|requeued)", ["queue", "outcome"]
)
RUN_SECONDS = Histogram(
    "queue_job_run_seconds",
    "Time a job function ran",
    ["queue"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)
WAIT_SECONDS = Histogram(
    "queue_job_wait_seconds",
    "Time from enqueue (or due time) to start",
    ["queue"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300),
)
BACKEND_SWITCHES = Counter(
    "queue_backend_switches_total", "Producer switched between Redis and the disk spool", ["from", "to"]
)
SPOOL_DUPLICATES = Counter(
    "queue_spool_duplicates_total",
    "Spooled jobs refused at flush because their job id already existed in Redis",
    ["queue"],
)
SPOOLED = Gauge("queue_spooled_jobs", "Jobs held in the local disk spool waiting for Redis", ["queue"])
