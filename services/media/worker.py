"""Entry point: ``python -m services.media.worker`` serves the ``media-processing`` queue until SIGTERM.

The service (``python -m services.media``) owns the migrations: jobs only exist once it has
taken an upload, so a worker never needs the table before the service made it.
"""

from __future__ import annotations

from typing import Any

from runtime.config import load_settings
from runtime.process import run_process
from runtime.queue.runner import serve
from services.media.app import open_parts, worker_context
from services.media.queues import processing_queue
from services.media.settings import MediaSettings


async def run(settings: MediaSettings) -> None:
    parts = open_parts(settings, client_name="media-worker")

    async def startup(shared: dict[str, Any]) -> None:
        shared.update(worker_context(parts))

    try:
        await serve(processing_queue(settings), settings.redis_url, on_startup=startup)
    finally:
        await parts.close()


def main() -> None:
    settings = load_settings(MediaSettings)
    run_process("media_worker", settings, lambda: run(settings))


if __name__ == "__main__":
    main()
