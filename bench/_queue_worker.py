"""A bench worker process: ``python -m bench._queue_worker`` (settings from ``BQ_*`` env vars).

Every feature of the layer is on: leases with renewal and a reaper, a global rate limit (set far
above the load unless ``BQ_RATE`` says otherwise), a per-key limit, retention trimming, events,
metrics and the tracing hooks.  ``probe`` returns how long after ``sent`` (epoch s) it started.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from runtime.process import run_main
from runtime.queue import QueueSpec, RateLimit, Retention
from runtime.queue.runner import serve

QUEUE = "bench"


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def probe(ctx: dict[str, Any], sent: float) -> float:
    return time.time() - sent


async def sleep(ctx: dict[str, Any], ms: int) -> None:
    await asyncio.sleep(ms / 1000)


def bench_spec(env: dict[str, str] | os._Environ[str] = os.environ) -> QueueSpec:
    return QueueSpec(
        name=QUEUE,
        functions=(noop, probe, sleep),
        concurrency=int(env.get("BQ_CONC", "50")),
        rate_limit=RateLimit.parse(env.get("BQ_RATE", "1000000/1s")),
        key_rate_limit=RateLimit.parse(env.get("BQ_KEY_RATE", "100/1s")),
        retention=Retention(completed=int(env.get("BQ_KEEP", "100")), failed=1000, max_age_s=3600),
        lease_s=float(env.get("BQ_LEASE", "5")),
        shutdown_grace_s=1.0,
    )


if __name__ == "__main__":
    # No logging, tracing or /metrics set-up: the bench measures the queue layer alone.
    run_main(lambda: serve(bench_spec(), os.environ["BQ_URL"]))
