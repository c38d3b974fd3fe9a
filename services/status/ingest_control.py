"""Best-effort call to ami_ingest's IngestControl.RequestResync (used by Resync)."""

from __future__ import annotations

import grpc
import grpc.aio
from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from runtime.auth import internal_channel
from runtime.config import CommonSettings
from runtime.logging import get_logger

log = get_logger("status.ingest_control")


async def request_asterisk_resync(settings: CommonSettings, deadline_seconds: float) -> bool:
    """Ask the ingest at ``AMI_INGEST_ADDR`` to resync from Asterisk; False when it cannot be reached in time."""
    address = settings.ami_ingest_addr
    try:
        async with internal_channel(address, settings) as channel:
            stub = ingest_pb2_grpc.IngestControlStub(channel)
            reply = await stub.RequestResync(ingest_pb2.RequestResyncRequest(), timeout=deadline_seconds)
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
        log.warning("asterisk resync request failed", address=address, code=str(code))
        return False
    return bool(reply.accepted)
