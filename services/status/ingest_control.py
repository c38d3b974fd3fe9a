"""Best-effort call to ami_ingest's IngestControl.RequestResync (used by Resync)."""

from __future__ import annotations

import grpc
import grpc.aio
from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from runtime import grpc_client
from runtime.logging import get_logger

log = get_logger("status.ingest_control")


async def request_asterisk_resync(address: str, deadline_seconds: float) -> bool:
    """Ask the ingest at ``address`` to resync from Asterisk; False when it cannot be reached in time."""
    try:
        async with grpc_client.insecure_channel(address) as channel:
            stub = ingest_pb2_grpc.IngestControlStub(channel)
            reply = await stub.RequestResync(ingest_pb2.RequestResyncRequest(), timeout=deadline_seconds)
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
        log.warning("asterisk resync request failed", address=address, code=str(code))
        return False
    return bool(reply.accepted)
