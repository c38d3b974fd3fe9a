"""Anchor workers for the queue bench: ``python -m bench._queue_anchor arq|bullmq REDIS_URL``."""

from __future__ import annotations

import asyncio
import sys

from arq.connections import RedisSettings
from arq.worker import Worker


async def noop(ctx, *args):
    return None


async def bullmq_noop(job, token):
    return None


async def serve_bullmq(url: str) -> None:
    from bullmq import Worker as BullWorker

    worker = BullWorker("anchor", bullmq_noop, {"connection": url, "concurrency": 50})
    try:
        await asyncio.Event().wait()
    finally:
        await worker.close()


def main() -> None:
    kind, url = sys.argv[1], sys.argv[2]
    if kind == "arq":
        # arq defaults except concurrency 50, as in the anchor numbers.
        Worker(functions=[noop], redis_settings=RedisSettings.from_dsn(url), max_jobs=50, handle_signals=True).run()
    else:
        asyncio.run(serve_bullmq(url))


if __name__ == "__main__":
    main()
