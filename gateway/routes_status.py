"""``/api/queue-status/*``: the live status service over HTTP/JSON, in the seed's envelope.

Every success is ``{"success": true, "data": …}`` (lists add ``"count"``, reads add ``"meta"``
with source/stale/timestamp/lastIngestAt); every failure is rendered by :mod:`gateway.errors`.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
import grpc.aio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client import Counter, Gauge
from sse_starlette import EventSourceResponse, ServerSentEvent
from switchboard.status.v1 import status_pb2

from gateway.backends import Backends
from gateway.errors import error_body
from gateway.responses import FastJSONResponse, dumps
from gateway.settings import GatewaySettings
from gateway.snapshot_cache import SnapshotJsonCache
from gateway.status_json import (
    STATUS_NAMES,
    change_set_json,
    channel_json,
    meta_json,
    operator_json,
    queue_json,
    snapshot_json,
    status_from_name,
    sync_status_json,
)
from gateway.status_mirror import MirrorView, StatusMirror
from runtime.errors import NotFound, Unavailable

__all__ = ["StatusName", "router"]

router = APIRouter(prefix="/api/queue-status", tags=["queue-status"])

SSE_STREAMS = Gauge("switchboard_gateway_sse_streams", "Open /api/queue-status/stream connections.")
STATUS_READS = Counter(
    "switchboard_gateway_status_reads_total", "Status reads by where they were answered from.", ["path"]
)
_MIRROR_READS = STATUS_READS.labels("mirror")
_GRPC_READS = STATUS_READS.labels("grpc")


class StatusName(enum.StrEnum):
    """The operator status names accepted by the ``status`` filter (the JSON ``status`` values)."""

    unknown = "unknown"
    idle = "idle"
    in_use = "in_use"
    busy = "busy"
    invalid = "invalid"
    unavailable = "unavailable"
    ringing = "ringing"
    ring_in_use = "ring_in_use"
    on_hold = "on_hold"


assert {s.value for s in StatusName} == set(STATUS_NAMES.values())

QueueFilter = Annotated[str | None, Query(min_length=1, max_length=128, description="Only this queue.")]
StatusFilter = Annotated[StatusName | None, Query(description="Only operators with this device status.")]
PausedFilter = Annotated[bool | None, Query(description="Only paused (true) or unpaused (false) operators.")]


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


def _timeout(request: Request) -> float:
    settings: GatewaySettings = request.app.state.settings
    return settings.rpc_timeout_seconds


def count_mirror_read() -> None:
    _MIRROR_READS.inc()


def _mirror(request: Request) -> MirrorView | None:
    """The mirror's answer, or None: then the route asks the status service (and counts it)."""
    mirror: StatusMirror | None = request.app.state.status_mirror
    view = mirror.view() if mirror is not None else None
    if view is None:
        _GRPC_READS.inc()
    else:
        _MIRROR_READS.inc()
    return view


def _fence(request: Request) -> None:
    mirror: StatusMirror | None = request.app.state.status_mirror
    if mirror is not None:
        mirror.fence()


def _plain(name: str | None) -> bool:
    """A name the status service accepts as is: anything else goes there, for its exact 400."""
    return name is None or (len(name) <= 128 and name.isprintable())


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _mirror_operators(view: MirrorView, queue: str | None, status: StatusName | None, paused: bool | None) -> Response:
    code = None if status is None else status_from_name(status.value)
    rows, count = view.state.operators.select(
        lambda op: (
            (queue is None or op.queue_name == queue)
            and (code is None or op.status == code)
            and (paused is None or op.paused == paused)
        )
    )
    return _json(view.list_body(rows, count))


def _ok(data: Any, *, count: int | None = None, meta: status_pb2.ReadMeta | None = None) -> FastJSONResponse:
    body: dict[str, Any] = {"success": True, "data": data}
    if count is not None:
        body["count"] = count
    if meta is not None:
        body["meta"] = meta_json(meta)
    return FastJSONResponse(body)


def _operators_request(
    queue: str | None, status: StatusName | None, paused: bool | None
) -> status_pb2.ListOperatorsRequest:
    request = status_pb2.ListOperatorsRequest()
    if queue is not None:
        request.queue_name = queue
    if status is not None:
        request.status = status_from_name(status.value)
    if paused is not None:
        request.paused = paused
    return request


async def _operators(request: Request, queue: str | None, status: StatusName | None, paused: bool | None) -> Response:
    """Operators filtered as asked: from the mirror when it can answer, else from the status service."""
    view = _mirror(request) if _plain(queue) else None
    if view is not None:
        return _mirror_operators(view, queue, status, paused)
    reply = await _backends(request).status.ListOperators(
        _operators_request(queue, status, paused), timeout=_timeout(request)
    )
    operators = [operator_json(op) for op in reply.operators]
    return _ok(operators, count=len(operators), meta=reply.meta)


@router.get("/operators", summary="Operators (one row per queue membership), filtered")
async def list_operators(
    request: Request, queue: QueueFilter = None, status: StatusFilter = None, paused: PausedFilter = None
) -> Response:
    return await _operators(request, queue, status, paused)


@router.get("/operators/queue/{queue}", summary="Operators of one queue")
async def list_queue_operators(
    request: Request, queue: str, status: StatusFilter = None, paused: PausedFilter = None
) -> Response:
    return await _operators(request, queue, status, paused)


@router.get(
    "/operators/{memberId:path}",
    summary="One member's rows (one per queue); memberId like PJSIP/1001 or Local/1001@agents",
)
async def get_operator(request: Request, memberId: str, queue: QueueFilter = None) -> Response:
    view = _mirror(request) if _plain(memberId) and _plain(queue) else None
    if view is not None:
        rows, count = view.state.operators.select(
            lambda op: op.member_id == memberId and (queue is None or op.queue_name == queue)
        )
        if count:  # none: the status service words the 404
            return _json(view.list_body(rows, count))
    grpc_request = status_pb2.GetOperatorRequest(member_id=memberId)
    if queue is not None:
        grpc_request.queue_name = queue
    reply = await _backends(request).status.GetOperator(grpc_request, timeout=_timeout(request))
    if not reply.operators:
        where = f" in queue {queue}" if queue is not None else ""
        raise NotFound(f"operator {memberId}{where} not found", details={"memberId": memberId})
    operators = [operator_json(op) for op in reply.operators]
    return _ok(operators, count=len(operators), meta=reply.meta)


@router.get("/queues", summary="Queues with their waiting callers")
async def list_queues(request: Request) -> Response:
    view = _mirror(request)
    if view is not None:
        return _json(view.list_body(view.state.queues_json(view.now), len(view.state.queues.messages)))
    reply = await _backends(request).status.ListQueues(status_pb2.ListQueuesRequest(), timeout=_timeout(request))
    queues = [queue_json(q) for q in reply.queues]
    return _ok(queues, count=len(queues), meta=reply.meta)


@router.get("/queues/{name}", summary="One queue with its callers and operators")
async def get_queue(request: Request, name: str) -> Response:
    view = _mirror(request) if _plain(name) else None
    queue = view.state.queue_json(name, view.now) if view is not None else None
    if view is not None and queue is not None:  # no such queue: the status service words the 404
        operators, _ = view.state.operators.select(lambda op: op.queue_name == name)
        body = b'{"queue":' + queue + b',"operators":' + operators + b"}"
        return _json(b'{"success":true,"data":' + body + b',"meta":' + view.meta_json() + b"}")
    reply = await _backends(request).status.GetQueue(status_pb2.GetQueueRequest(name=name), timeout=_timeout(request))
    data = {"queue": queue_json(reply.queue), "operators": [operator_json(op) for op in reply.operators]}
    return _ok(data, meta=reply.meta)


@router.get("/channels", summary="Channels that are up")
async def list_channels(request: Request) -> Response:
    view = _mirror(request)
    if view is not None:
        return _json(view.list_body(view.state.channels.joined(), len(view.state.channels.messages)))
    reply = await _backends(request).status.ListChannels(status_pb2.ListChannelsRequest(), timeout=_timeout(request))
    channels = [channel_json(c) for c in reply.channels]
    return _ok(channels, count=len(channels), meta=reply.meta)


@router.get("/snapshot", summary="Operators, queues and channels at one revision")
async def get_snapshot(request: Request) -> Response:
    view = _mirror(request)
    if view is not None:
        return _json(view.snapshot_body())
    reply = await _backends(request).status.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=_timeout(request))
    cache: SnapshotJsonCache = request.app.state.snapshot_cache
    return _ok(cache.snapshot_json(reply))


@router.get("/sync/status", summary="Row counts in the database and in Redis, and ingest freshness")
async def sync_status(request: Request) -> FastJSONResponse:
    reply = await _backends(request).status.GetSyncStatus(status_pb2.GetSyncStatusRequest(), timeout=_timeout(request))
    return _ok(sync_status_json(reply))


@router.post("/sync/resync", summary="Reseed Redis from the database and ask the ingest to resync")
async def resync(request: Request) -> FastJSONResponse:
    reply = await _backends(request).status.Resync(status_pb2.ResyncRequest(), timeout=_timeout(request))
    _fence(request)
    return _ok(
        {
            "queuesSeeded": reply.queues_seeded,
            "operatorsSeeded": reply.operators_seeded,
            "asteriskResyncRequested": reply.asterisk_resync_requested,
        }
    )


@router.delete("/clear", summary="Remove every live key from Redis")
async def clear(request: Request) -> FastJSONResponse:
    reply = await _backends(request).status.Clear(status_pb2.ClearRequest(), timeout=_timeout(request))
    _fence(request)
    return _ok({"removedKeys": reply.removed_keys})


def _event(message: status_pb2.WatchSnapshotResponse) -> ServerSentEvent:
    if message.WhichOneof("event") == "snapshot":
        snapshot = message.snapshot
        return ServerSentEvent(dumps(snapshot_json(snapshot)), event="snapshot", id=str(snapshot.revision))
    changes = message.changes
    return ServerSentEvent(dumps(change_set_json(changes)), event="changes", id=str(changes.revision))


async def _relay(
    call: grpc.aio.UnaryStreamCall, first: status_pb2.WatchSnapshotResponse
) -> AsyncIterator[ServerSentEvent]:
    SSE_STREAMS.inc()
    try:
        yield _event(first)
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                return
            yield _event(message)
    except grpc.aio.AioRpcError as error:
        # Headers are gone: the failure travels as a last event; EventSource then reconnects.
        body = error_body(error.code(), error.details() or error.code().name)
        yield ServerSentEvent(dumps(body), event="error")
    finally:
        call.cancel()
        SSE_STREAMS.dec()


@router.get(
    "/stream",
    summary="Server-Sent Events: a `snapshot` event, then `changes` events in revision order",
    response_class=EventSourceResponse,
)
async def stream(
    request: Request,
    queue: Annotated[list[str] | None, Query(description="Only these queues (channels always flow).")] = None,
) -> EventSourceResponse:
    settings: GatewaySettings = request.app.state.settings
    call = _backends(request).status.WatchSnapshot(status_pb2.WatchSnapshotRequest(queue_names=queue or []))
    try:
        # Wait for the snapshot first, so an unreachable backend is a plain 503, not a broken stream.
        first = await call.read()
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        raise Unavailable("status watch ended before its snapshot")
    return EventSourceResponse(
        _relay(call, first),
        ping=int(settings.sse_ping_seconds),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
