"""An in-memory StatusService for the gateway's tests (the status service is an external edge here).

It keeps operators/queues/channels in dicts, answers the unary RPCs from them, and fans out
:meth:`FakeStatusService.push` change sets to every open WatchSnapshot, so a test can drive the
gateway's SSE stream and the dashboard through a real grpc.aio server on loopback.
Errors go through runtime.errors + the runtime server interceptor, exactly as a real servicer's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from runtime.errors import NotFound, SwitchboardError
from runtime.interceptors import ServerInterceptor

S = status_pb2


def operator(queue: str, member: str, name: str = "", **fields: object) -> status_pb2.Operator:
    defaults: dict[str, object] = {
        "state_interface": f"Custom:{member.split('/')[-1].split('@')[0]}",
        "membership": S.MEMBERSHIP_STATIC,
        "status_code": 1,
        "status": S.MEMBER_STATUS_IDLE,
    }
    defaults.update(fields)
    return S.Operator(queue_name=queue, member_id=member, member_name=name or member, **defaults)  # type: ignore[arg-type]


@dataclass
class FakeStatusService(status_pb2_grpc.StatusServiceServicer):
    operators: dict[tuple[str, str], status_pb2.Operator] = field(default_factory=dict)
    queues: dict[str, status_pb2.Queue] = field(default_factory=dict)
    channels: dict[str, status_pb2.Channel] = field(default_factory=dict)
    revision: int = 1
    source: int = S.SOURCE_REDIS
    fail_with: SwitchboardError | None = None
    """When set, every unary RPC raises it (to test error mapping end to end)."""
    active_watches: int = 0
    watch_ended: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[object] = field(default_factory=list)
    _watchers: set[asyncio.Queue[status_pb2.ChangeSet]] = field(default_factory=set)

    def seed(
        self,
        operators: Iterable[status_pb2.Operator] = (),
        queues: Iterable[status_pb2.Queue] = (),
        channels: Iterable[status_pb2.Channel] = (),
    ) -> None:
        for op in operators:
            self.operators[(op.queue_name, op.member_id)] = op
        for q in queues:
            self.queues[q.name] = q
        for c in channels:
            self.channels[c.unique_id] = c

    def _apply(self, change: status_pb2.StateChange) -> None:
        kind = change.WhichOneof("change")
        if kind == "operator_upserted":
            op = change.operator_upserted
            self.operators[(op.queue_name, op.member_id)] = op
        elif kind == "operator_removed":
            self.operators.pop((change.operator_removed.queue_name, change.operator_removed.member_id), None)
        elif kind == "queue_upserted":
            self.queues[change.queue_upserted.name] = change.queue_upserted
        elif kind == "queue_removed":
            self.queues.pop(change.queue_removed, None)
        elif kind == "channel_upserted":
            self.channels[change.channel_upserted.unique_id] = change.channel_upserted
        elif kind == "channel_removed":
            self.channels.pop(change.channel_removed, None)

    def push(self, *changes: status_pb2.StateChange) -> int:
        """Apply changes and send them to every watcher as one ChangeSet; returns its revision."""
        for change in changes:
            self._apply(change)
        self.revision += 1
        change_set = S.ChangeSet(revision=self.revision, changes=changes, emitted_at=time.time())
        for queue in self._watchers:
            queue.put_nowait(change_set)
        return self.revision

    def _meta(self) -> status_pb2.ReadMeta:
        return S.ReadMeta(source=self.source, stale=False, timestamp=time.time(), last_ingest_at=time.time())  # type: ignore[arg-type]

    def _check(self, request: object) -> None:
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with

    def snapshot(self) -> status_pb2.Snapshot:
        return S.Snapshot(
            operators=list(self.operators.values()),
            queues=list(self.queues.values()),
            channels=list(self.channels.values()),
            timestamp=time.time(),
            source=self.source,  # type: ignore[arg-type]
            revision=self.revision,
        )

    async def ListOperators(self, request, context):
        self._check(request)
        ops = [
            op
            for op in self.operators.values()
            if (not request.HasField("queue_name") or op.queue_name == request.queue_name)
            and (not request.HasField("status") or op.status == request.status)
            and (not request.HasField("paused") or op.paused == request.paused)
        ]
        return S.ListOperatorsResponse(operators=ops, meta=self._meta())

    async def GetOperator(self, request, context):
        self._check(request)
        ops = [
            op
            for op in self.operators.values()
            if op.member_id == request.member_id
            and (not request.HasField("queue_name") or op.queue_name == request.queue_name)
        ]
        if not ops:
            raise NotFound(f"operator {request.member_id} not found", details={"memberId": request.member_id})
        return S.GetOperatorResponse(operators=ops, meta=self._meta())

    async def ListQueues(self, request, context):
        self._check(request)
        return S.ListQueuesResponse(queues=list(self.queues.values()), meta=self._meta())

    async def GetQueue(self, request, context):
        self._check(request)
        if request.name not in self.queues:
            raise NotFound(f"queue {request.name} not found", details={"queue": request.name})
        ops = [op for op in self.operators.values() if op.queue_name == request.name]
        return S.GetQueueResponse(queue=self.queues[request.name], operators=ops, meta=self._meta())

    async def ListChannels(self, request, context):
        self._check(request)
        return S.ListChannelsResponse(channels=list(self.channels.values()), meta=self._meta())

    async def GetSnapshot(self, request, context):
        self._check(request)
        return self.snapshot()

    async def GetSyncStatus(self, request, context):
        self._check(request)
        return S.SyncStatus(
            db_members=len(self.operators),
            db_queues=len(self.queues),
            redis_operators=len(self.operators),
            redis_queues=len(self.queues),
            redis_channels=len(self.channels),
            redis_available=True,
            last_ingest_at=1_700_000_000.5,
        )

    async def Resync(self, request, context):
        self._check(request)
        return S.ResyncResponse(
            queues_seeded=len(self.queues), operators_seeded=len(self.operators), asterisk_resync_requested=True
        )

    async def Clear(self, request, context):
        self._check(request)
        removed = len(self.operators) + len(self.queues) + len(self.channels)
        self.operators.clear()
        self.queues.clear()
        self.channels.clear()
        return S.ClearResponse(removed_keys=removed)

    async def Ingest(self, request_iterator, context) -> AsyncIterator[status_pb2.IngestAck]:
        async for batch in request_iterator:
            if batch.replace_all:
                self.operators.clear()
                self.queues.clear()
                self.channels.clear()
            revision = self.push(*batch.changes)
            yield S.IngestAck(sequence=batch.sequence, revision=revision)

    async def WatchSnapshot(self, request, context) -> AsyncIterator[status_pb2.WatchSnapshotResponse]:
        self.requests.append(request)
        queue: asyncio.Queue[status_pb2.ChangeSet] = asyncio.Queue()
        self._watchers.add(queue)
        self.active_watches += 1
        try:
            yield S.WatchSnapshotResponse(snapshot=self.snapshot())
            while True:
                yield S.WatchSnapshotResponse(changes=await queue.get())
        finally:
            self._watchers.discard(queue)
            self.active_watches -= 1
            self.watch_ended.set()


@dataclass
class GrpcBackend:
    """One grpc.aio server on a loopback port with grpc.health.v1 (and maybe a StatusService)."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set("", status)

    async def stop(self) -> None:
        await self.server.stop(grace=None)


async def start_backend(status: FakeStatusService | None = None) -> GrpcBackend:
    server = grpc.aio.server(interceptors=[ServerInterceptor()])
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if status is not None:
        status_pb2_grpc.add_StatusServiceServicer_to_server(status, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    backend = GrpcBackend(server, port, health)
    await backend.set_serving(True)
    return backend
