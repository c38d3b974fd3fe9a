"""Entry point: ``python -m services.media`` (listens on MEDIA_ADDR, default 127.0.0.1:50052).

Uploads, reads, deletes and stats; the processing runs in ``python -m services.media.worker``.
Migrations run once in the entry process (``prepare``).
"""

from __future__ import annotations

from runtime.grpc_server import GrpcService, run_service
from services.media.app import create_app, prepare_database
from services.media.settings import MediaSettings


async def build(settings: MediaSettings) -> GrpcService:
    app = await create_app(settings)
    return app.grpc_service()


if __name__ == "__main__":
    run_service("media", MediaSettings, build, prepare=prepare_database)
