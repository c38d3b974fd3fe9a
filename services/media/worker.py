"""Entry point: ``python -m services.media.worker [processing|sync|watermark]`` serves one media
queue until SIGTERM.

``processing`` (the default) serves ``media-processing``: uploads become variants; with
``S3_BUCKET`` set each ready media is then queued on ``media-sync``, which ``sync`` serves:
copies between the local store and S3, automatic and manual (``SyncToS3``, ``SyncFromS3``,
``DeleteFromS3``); without ``S3_BUCKET`` the sync worker still runs (``make run``) and its sync
jobs fail at once, naming the setting. ``watermark`` serves ``media-watermark`` (watermarked
outputs beside the variants). The service (``python -m services.media``) owns the migrations: jobs only
exist once it has taken an upload, so a worker never needs the table before the service made it.
"""

from __future__ import annotations

import sys
from typing import Any

from runtime.config import load_settings
from runtime.process import run_process
from runtime.queue.runner import serve
from services.media.app import close_worker_context, open_parts, worker_context
from services.media.memory import tune_media_process
from services.media.queues import PROCESSING_QUEUE, SPECS, SYNC_QUEUE, WATERMARK_QUEUE
from services.media.settings import MediaSettings

QUEUES = {"processing": PROCESSING_QUEUE, "sync": SYNC_QUEUE, "watermark": WATERMARK_QUEUE}


async def run(settings: MediaSettings, queue: str) -> None:
    parts = open_parts(settings, client_name=f"media-worker-{queue}")
    spec = SPECS[queue](settings)

    async def startup(shared: dict[str, Any]) -> None:
        shared.update(await worker_context(parts, queue))

    try:
        await serve(spec, settings.redis_url, on_startup=startup, on_shutdown=close_worker_context)
    finally:
        await parts.close()


def main(argv: list[str]) -> None:
    which = argv[0] if argv else "processing"
    if which not in QUEUES:
        print(f"usage: python -m services.media.worker [{'|'.join(QUEUES)}]", file=sys.stderr)
        raise SystemExit(2)
    tune_media_process()  # before any thread allocates: see services.media.memory
    settings = load_settings(MediaSettings)
    run_process(f"media_worker_{which}", settings, lambda: run(settings, QUEUES[which]))


if __name__ == "__main__":
    main(sys.argv[1:])
