"""``/api/queue-status/*``: the live status service over HTTP/JSON.

Every success is ``{"success": true, "data": …, "meta": …}`` (reads' meta: source, stale, asOf,
lastIngestAt; lists add count); every failure is rendered by :mod:`gateway.errors`.
Reads take one path (:class:`gateway.status_reads.StatusReads`); writes and the SSE stream
are gRPC calls.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client import Gauge
from sse_starlette import EventSourceResponse
from switchboard.status.v1 import status_pb2

from gateway.backend_calls import rpc_timeout
from gateway.backends import Backends
from gateway.http_server import CONNECTION_EXTENSION, Connection
from gateway.responses import FastJSONResponse, ok
from gateway.schemas_status import (
    ClearResult,
    ResyncResult,
    Snapshot,
    StatusChannel,
    StatusOperator,
    StatusQueue,
    StatusQueueDetail,
    SyncStatus,
)
from gateway.settings import GatewaySettings
from gateway.status_fanout import StatusFanout
from gateway.status_json import (
    STATUS_NAMES,
    status_from_name,
    sync_status_json,
)
from gateway.status_mirror import StatusMirror
from gateway.status_reads import StatusReads
from runtime.auth import Scope
from runtime.auth.http import requires

__all__ = ["StatusName", "router"]

router = APIRouter(prefix="/api/queue-status", tags=["queue-status"], dependencies=[requires(Scope.READ)])

SSE_STREAMS = Gauge("switchboard_gateway_sse_streams", "Open /api/queue-status/stream connections.")


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


def _reads(request: Request) -> StatusReads:
    reads: StatusReads = request.app.state.status_reads
    return reads


def _fence(request: Request) -> None:
    mirror: StatusMirror | None = request.app.state.status_mirror
    if mirror is not None:
        mirror.fence()


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def _operators(request: Request, queue: str | None, status: StatusName | None, paused: bool | None) -> Response:
    code = None if status is None else status_from_name(status.value)
    return _json(await _reads(request).operators(queue, code, paused))


# First of the routes: the most frequent read (wall screens poll it) is matched first.
@router.get("/snapshot", response_model=Snapshot, summary="Operators, queues and channels at one revision")
async def get_snapshot(request: Request) -> Response:
    return _json(await _reads(request).snapshot())


@router.get(
    "/operators", response_model=list[StatusOperator], summary="Operators (one row per queue membership), filtered"
)
async def list_operators(
    request: Request, queue: QueueFilter = None, status: StatusFilter = None, paused: PausedFilter = None
) -> Response:
    return await _operators(request, queue, status, paused)


@router.get("/operators/queue/{queue}", response_model=list[StatusOperator], summary="Operators of one queue")
async def list_queue_operators(
    request: Request, queue: str, status: StatusFilter = None, paused: PausedFilter = None
) -> Response:
    code = None if status is None else status_from_name(status.value)
    return _json(await _reads(request).queue_operators(queue, code, paused))


@router.get(
    "/operators/{memberId:path}",
    response_model=list[StatusOperator],
    summary="One member's rows (one per queue); memberId like PJSIP/1001 or Local/1001@agents",
)
async def get_operator(request: Request, memberId: str, queue: QueueFilter = None) -> Response:
    return _json(await _reads(request).member(memberId, queue))


@router.get("/queues", response_model=list[StatusQueue], summary="Queues with their waiting callers")
async def list_queues(request: Request) -> Response:
    return _json(await _reads(request).queues())


@router.get("/queues/{name}", response_model=StatusQueueDetail, summary="One queue with its callers and operators")
async def get_queue(request: Request, name: str) -> Response:
    return _json(await _reads(request).queue(name))


@router.get("/channels", response_model=list[StatusChannel], summary="Channels that are up")
async def list_channels(request: Request) -> Response:
    return _json(await _reads(request).channels())


@router.get(
    "/sync/status", response_model=SyncStatus, summary="Row counts in the database and in Redis, and ingest freshness"
)
async def sync_status(request: Request) -> FastJSONResponse:
    reply = await _backends(request).status.GetSyncStatus(
        status_pb2.GetSyncStatusRequest(), timeout=rpc_timeout(request)
    )
    return ok(sync_status_json(reply))


@router.post(
    "/sync/resync",
    response_model=ResyncResult,
    summary="Reseed Redis from the database and ask the ingest to resync",
    dependencies=[requires(Scope.ADMIN)],
)
async def resync(request: Request) -> FastJSONResponse:
    reply = await _backends(request).status.Resync(status_pb2.ResyncRequest(), timeout=rpc_timeout(request))
    _fence(request)
    return ok(
        {
            "queuesSeeded": reply.queues_seeded,
            "operatorsSeeded": reply.operators_seeded,
            "asteriskResyncRequested": reply.asterisk_resync_requested,
        }
    )


@router.delete(
    "/clear",
    response_model=ClearResult,
    summary="Remove every live key from Redis",
    dependencies=[requires(Scope.ADMIN)],
)
async def clear(request: Request) -> FastJSONResponse:
    reply = await _backends(request).status.Clear(status_pb2.ClearRequest(), timeout=rpc_timeout(request))
    _fence(request)
    return ok({"removedKeys": reply.removed_keys})


async def _counted(frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    SSE_STREAMS.inc()
    try:
        async for chunk in frames:
            yield chunk
    finally:
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
    fanout: StatusFanout = request.app.state.status_fanout
    connection: Connection | None = request.scope.get("extensions", {}).get(CONNECTION_EXTENSION)
    # The snapshot comes first, so an unreachable backend is a plain 503, not a broken stream.
    frames = await fanout.subscribe(queue or [], connection.streaming_wire if connection is not None else None)
    return EventSourceResponse(
        _counted(frames),
        ping=int(settings.sse_ping_seconds),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
