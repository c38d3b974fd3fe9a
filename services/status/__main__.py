"""Entry point: ``python -m services.status`` (listens on STATUS_ADDR, default 127.0.0.1:50051).

Migrations run once in the entry process (``prepare``); with ``GRPC_PROCESSES=N`` it then
supervises N replica processes on the same port, each following the Redis stream on its own.
"""

from __future__ import annotations

import gc

from runtime.grpc_server import GrpcService, run_service
from services.status.app import create_app, prepare_database
from services.status.settings import StatusSettings


async def build(settings: StatusSettings) -> GrpcService:
    app = await create_app(settings, migrate=False)  # prepare_database ran already
    await app.start()
    # Modules, descriptors and connections live as long as the process (~120,000 objects): keep
    # them out of the collector's full passes, which otherwise walk them again and again while
    # reads and the stream allocate (as ami_ingest does).
    gc.collect()
    gc.freeze()
    return app.grpc_service()


if __name__ == "__main__":
    run_service("status", StatusSettings, build, prepare=prepare_database)
