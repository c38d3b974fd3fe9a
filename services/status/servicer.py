"""The gRPC face of the status service: validate, delegate to :class:`StatusService`, translate.

Errors are raised as :mod:`runtime.errors` exceptions (InvalidArgument naming the field,
NotFound, FailedPrecondition for a fenced-off ingest, Unavailable); the runtime interceptor
turns them into gRPC statuses. :func:`register` adds the service to a server with
pass-through serializers for GetSnapshot and WatchSnapshot, whose answers are assembled from
cached, already serialized rows (see :mod:`services.status.domain.state`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
import grpc.aio
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from runtime.errors import InvalidArgument, NotFound
from runtime.interceptors import log_ok_calls_at_debug
from services.status.domain import validation
from services.status.domain.views import operator_matches, operators_of_member
from services.status.redis_store import PartiallyApplied
from services.status.service import StatusService

SERVICE_NAME = status_pb2.DESCRIPTOR.services_by_name["StatusService"].full_name

READ_METHODS = ("ListOperators", "GetOperator", "ListQueues", "GetQueue", "ListChannels", "GetSnapshot")

MAX_READ_AHEAD = 256
MAX_GROUP = 64
"""Most batches applied in one Redis round trip."""

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type information)


class StatusServicer(status_pb2_grpc.StatusServiceServicer):
    def __init__(self, service: StatusService) -> None:
        self.service = service

    async def ListOperators(
        self, request: status_pb2.ListOperatorsRequest, context: Context
    ) -> status_pb2.ListOperatorsResponse:
        validation.check_list_operators(request)
        view = await self.service.reader.view()
        queue_name = request.queue_name if request.HasField("queue_name") else None
        status = request.status if request.HasField("status") else None
        paused = request.paused if request.HasField("paused") else None
        operators = [
            op
            for op in view.state.operators()
            if operator_matches(op, queue_name=queue_name, status=status, paused=paused)
        ]
        return status_pb2.ListOperatorsResponse(operators=operators, meta=view.meta)

    async def GetOperator(
        self, request: status_pb2.GetOperatorRequest, context: Context
    ) -> status_pb2.GetOperatorResponse:
        validation.check_get_operator(request)
        view = await self.service.reader.view()
        queue_name = request.queue_name if request.HasField("queue_name") else None
        operators = operators_of_member(view.state.operators(), request.member_id, queue_name)
        if not operators:
            where = f" in queue {queue_name!r}" if queue_name is not None else ""
            raise NotFound(f"no operator {request.member_id!r}{where}", details={"member_id": request.member_id})
        return status_pb2.GetOperatorResponse(operators=operators, meta=view.meta)

    async def ListQueues(
        self, request: status_pb2.ListQueuesRequest, context: Context
    ) -> status_pb2.ListQueuesResponse:
        view = await self.service.reader.view()
        return status_pb2.ListQueuesResponse(queues=view.state.queues(view.now), meta=view.meta)

    async def GetQueue(self, request: status_pb2.GetQueueRequest, context: Context) -> status_pb2.GetQueueResponse:
        validation.check_get_queue(request)
        view = await self.service.reader.view()
        queue = view.state.queue(request.name, view.now)
        if queue is None:
            raise NotFound(f"no queue {request.name!r}", details={"name": request.name})
        operators = [op for op in view.state.operators() if op.queue_name == request.name]
        return status_pb2.GetQueueResponse(queue=queue, operators=operators, meta=view.meta)

    async def ListChannels(
        self, request: status_pb2.ListChannelsRequest, context: Context
    ) -> status_pb2.ListChannelsResponse:
        view = await self.service.reader.view()
        return status_pb2.ListChannelsResponse(channels=view.state.channels(), meta=view.meta)

    async def GetSnapshot(self, request: status_pb2.GetSnapshotRequest, context: Context) -> bytes:  # type: ignore[override]
        live = self.service.reader.live_view()
        view = live if live is not None else await self.service.reader.view()
        return view.snapshot_bytes()

    async def WatchSnapshot(  # type: ignore[override]
        self, request: status_pb2.WatchSnapshotRequest, context: Context
    ) -> AsyncIterator[bytes]:
        validation.check_watch(request)
        async for message in self.service.watch(request.queue_names):
            yield message

    async def Ingest(
        self, request_iterator: AsyncIterator[status_pb2.IngestBatch], context: Context
    ) -> AsyncIterator[status_pb2.IngestAck]:
        """Batches are read ahead: whatever has arrived meanwhile is applied together (each
        batch still atomic, all in one Redis round trip), so a burst never queues behind
        per-batch round trips. Acks go out in order; a bad or fenced-off batch ends the stream
        after the acks of every batch before it."""
        arrived: asyncio.Queue[status_pb2.IngestBatch | None] = asyncio.Queue(MAX_READ_AHEAD)

        async def read_ahead() -> None:
            try:
                async for batch in request_iterator:
                    await arrived.put(batch)
            finally:
                await arrived.put(None)

        reader = asyncio.create_task(read_ahead())
        last_sequence: int | None = None
        try:
            finished = False
            while not finished:
                group: list[status_pb2.IngestBatch] = []
                problem: Exception | None = None
                item = await arrived.get()
                while True:
                    if item is None:
                        finished = True
                        break
                    try:
                        validation.check_batch(item)
                        if last_sequence is not None and item.sequence <= last_sequence:
                            raise InvalidArgument(
                                "sequence",
                                f"must increase within a stream (got {item.sequence} after {last_sequence})",
                            )
                    except InvalidArgument as error:
                        problem = error
                        break
                    group.append(item)
                    last_sequence = item.sequence
                    if arrived.empty() or len(group) >= MAX_GROUP:
                        break
                    item = arrived.get_nowait()
                if group:
                    try:
                        results = await self.service.ingest_group(group)
                    except PartiallyApplied as partial:
                        for batch, result in zip(group, partial.applied, strict=False):
                            yield status_pb2.IngestAck(sequence=batch.sequence, revision=result.revision)
                        raise partial.error from None
                    for batch, result in zip(group, results, strict=True):
                        yield status_pb2.IngestAck(sequence=batch.sequence, revision=result.revision)
                if problem is not None:
                    raise problem
        finally:
            reader.cancel()

    async def GetSyncStatus(self, request: status_pb2.GetSyncStatusRequest, context: Context) -> status_pb2.SyncStatus:
        return await self.service.sync_status()

    async def Resync(self, request: status_pb2.ResyncRequest, context: Context) -> status_pb2.ResyncResponse:
        return await self.service.resync()

    async def Clear(self, request: status_pb2.ClearRequest, context: Context) -> status_pb2.ClearResponse:
        return status_pb2.ClearResponse(removed_keys=await self.service.clear())


def _bytes_or_message(response: bytes | Any) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def register(servicer: StatusServicer, server: grpc.aio.Server) -> None:
    """Add the StatusService to ``server`` (generated handlers, pass-through for prebuilt answers)."""
    pb = status_pb2
    unary = grpc.unary_unary_rpc_method_handler
    handlers = {
        "ListOperators": unary(
            servicer.ListOperators, pb.ListOperatorsRequest.FromString, pb.ListOperatorsResponse.SerializeToString
        ),
        "GetOperator": unary(
            servicer.GetOperator, pb.GetOperatorRequest.FromString, pb.GetOperatorResponse.SerializeToString
        ),
        "ListQueues": unary(
            servicer.ListQueues, pb.ListQueuesRequest.FromString, pb.ListQueuesResponse.SerializeToString
        ),
        "GetQueue": unary(servicer.GetQueue, pb.GetQueueRequest.FromString, pb.GetQueueResponse.SerializeToString),
        "ListChannels": unary(
            servicer.ListChannels, pb.ListChannelsRequest.FromString, pb.ListChannelsResponse.SerializeToString
        ),
        "GetSnapshot": unary(servicer.GetSnapshot, pb.GetSnapshotRequest.FromString, _bytes_or_message),
        "WatchSnapshot": grpc.unary_stream_rpc_method_handler(
            servicer.WatchSnapshot, pb.WatchSnapshotRequest.FromString, _bytes_or_message
        ),
        "Ingest": grpc.stream_stream_rpc_method_handler(
            servicer.Ingest, pb.IngestBatch.FromString, pb.IngestAck.SerializeToString
        ),
        "GetSyncStatus": unary(
            servicer.GetSyncStatus, pb.GetSyncStatusRequest.FromString, pb.SyncStatus.SerializeToString
        ),
        "Resync": unary(servicer.Resync, pb.ResyncRequest.FromString, pb.ResyncResponse.SerializeToString),
        "Clear": unary(servicer.Clear, pb.ClearRequest.FromString, pb.ClearResponse.SerializeToString),
    }
    # Reads are the hot path (wall screens, the gateway): their successful fast calls log at
    # DEBUG; errors and slow reads are still logged, metrics and spans count every call.
    log_ok_calls_at_debug(*(f"/{SERVICE_NAME}/{name}" for name in READ_METHODS))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
