"""switchboard.ingest.v1.IngestControl: what the ingest is doing, and resync on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc.aio
from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc

if TYPE_CHECKING:
    from services.ami_ingest.app import IngestApp


class IngestControlServicer(ingest_pb2_grpc.IngestControlServicer):
    def __init__(self, app: IngestApp) -> None:
        self._app = app

    async def GetIngestStatus(
        self, request: ingest_pb2.GetIngestStatusRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.IngestStatus:
        return self._app.status()

    async def RequestResync(
        self, request: ingest_pb2.RequestResyncRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.RequestResyncResponse:
        return ingest_pb2.RequestResyncResponse(accepted=await self._app.request_resync())
