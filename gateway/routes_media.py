"""``/api/admin/media/*``: the media service over HTTP/JSON.

- ``POST /api/admin/media/upload-async``: multipart (field ``file``; ``entityType``, ``ownerId``,
  ``keepMetadata`` (``true``: the variants keep the original's EXIF and XMP; default ``false``,
  all metadata stripped) as form fields sent before the file, or as query parameters). The body is parsed while it
  arrives and the file's bytes go on to the media service's ``Upload`` stream chunk by chunk,
  never held whole. A ``Content-Length`` over ``MEDIA_MAX_UPLOAD_BYTES`` is 413 before a byte is
  read; bytes that are no image are 415 with the first chunk; a file passing the limit is 413
  the moment it does. Answer: ``202 {"success": true, "data": {"mediaId", "jobId", "state"}}``.
- ``GET /api/admin/media`` (``entityType``, ``ownerId``, ``state``, ``page``, ``pageSize``),
  ``GET /api/admin/media/{id}``, ``DELETE /api/admin/media/{id}`` (soft).
- ``GET /api/admin/media/{id}/variants/{name}``: the bytes, with ``ETag`` and ``Cache-Control``;
  ``If-None-Match`` with the current ETag is 304.
  A variant's ``url`` is this route, or a presigned S3 GET URL (``MEDIA_PRESIGN_EXPIRES_S``)
  once the media service has synced the media to its bucket.
- ``GET /api/admin/media/events``: Server-Sent Events, ``ready`` once live, then ``media``
  ``{mediaId, state, error, updatedAt}`` per state change.
- ``POST /api/admin/media/{id}/watermark`` ``{"watermarkId" | "text", "position", "opacity",
  "scale", "variants"}`` → ``202 {"jobId", "mediaId"}``; each watermarked variant then appears
  beside its plain one as ``<name>.watermarked``. A bad field is 400 naming it.
  ``DELETE /api/admin/media/{id}/watermark[?variants=...]`` removes those outputs again.
- ``GET /api/admin/media/queue``: ``{"processing" | "sync" | "watermark": {waiting, active, completed,
  failed, type, spooled}}``, counted by the media service from the queue layer (workers running or
  not); ``spooled``: jobs in the replicas' disk spools, not yet in Redis. While the media service
  cannot reach Redis the answer is still 200: the four counts ``null`` (unknown), ``spooled`` known.
- ``POST /api/admin/media/sync`` ``{"mediaIds": [...] | "all": true, "operation": upload|download|delete,
  "deleteSource": bool}``: one ``media-sync`` job per media; ``202 {"jobId", "jobIds", "queued",
  "operation"}`` (``jobId`` is the batch every job id starts with).
- ``POST /api/admin/media/cleanup`` ``{"olderThanDays" (default: the service's MEDIA_RETENTION_DAYS),
  "status": deleted|failed or a list of them (default deleted), "dryRun"}``: purges at once;
  ``{"deleted", "freedBytes", "dryRun"}``. A purge finding more than the media service's
  MEDIA_CLEANUP_INLINE_MAX media is queued instead: ``deleted`` and ``freedBytes`` are 0 and
  ``"jobId"`` (a media-sync job, whose result has them) and ``"queued"`` (media found) are added.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from switchboard.media.v1 import media_pb2, media_pb2_grpc

from gateway import sse_relay
from gateway.media_bodies import (
    POSITIONS,
    STATE_VALUES,
    CleanupBody,
    MediaStateName,
    SyncBody,
    SyncOperationName,
    WatermarkBody,
)
from gateway.media_json import event_json, media_json, queue_stats_json
from gateway.media_upload import KEEP_METADATA, MULTIPART_OVERHEAD, stream_upload
from gateway.responses import ok
from gateway.schemas_media import (
    CleanupResult,
    Media,
    MediaDeleted,
    MediaQueueStats,
    SyncQueued,
    Uploaded,
    WatermarkQueued,
    WatermarkRemoved,
)
from gateway.settings import GatewaySettings
from runtime.auth import Scope
from runtime.auth.http import requires
from runtime.errors import InvalidArgument

__all__ = ["MULTIPART_OVERHEAD", "UPLOAD_PATH", "router"]

router = APIRouter(prefix="/api/admin/media", tags=["media"], dependencies=[requires(Scope.READ)])

VARIANT_CACHE_CONTROL = "public, max-age=3600"
UPLOAD_PATH = "/api/admin/media/upload-async"
"""The upload route's full path: its body limit and timeout are the upload ones (gateway.request_body)."""


def _stub(request: Request) -> media_pb2_grpc.MediaServiceAsyncStub:
    stub: media_pb2_grpc.MediaServiceAsyncStub = request.app.state.backends.media
    return stub


def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


@router.post(
    "/upload-async",
    response_model=Uploaded,
    status_code=202,
    summary="Upload an image (multipart, field `file`); 202 once stored",
    dependencies=[requires(Scope.OPERATE)],
)
async def upload(
    request: Request,
    entityType: Annotated[str, Query(max_length=64)] = "",
    ownerId: Annotated[str, Query(max_length=128)] = "",
    keepMetadata: Annotated[
        str, Query(max_length=8, description="`true`: the variants keep the original's EXIF and XMP")
    ] = "",
) -> JSONResponse:
    settings = _settings(request)
    answer = await stream_upload(
        request,
        _stub(request),
        {"entityType": entityType, "ownerId": ownerId, KEEP_METADATA: keepMetadata},
        limit=settings.media_max_upload_bytes,
        rpc_seconds=settings.rpc_timeout_seconds * 12,
    )
    return ok(
        {"mediaId": answer.media.media_id, "jobId": answer.job_id, "state": media_json(answer.media)["state"]},
        status_code=202,
    )


@router.get("", response_model=list[Media], summary="Media, newest first, a page at a time")
async def list_media(
    request: Request,
    entityType: Annotated[str, Query(max_length=64)] = "",
    ownerId: Annotated[str, Query(max_length=128)] = "",
    state: MediaStateName | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    pageSize: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    reply = await _stub(request).ListMedia(
        media_pb2.ListMediaRequest(
            entity_type=entityType,
            owner_id=ownerId,
            state=STATE_VALUES[state.value] if state is not None else media_pb2.MEDIA_STATE_UNSPECIFIED,
            page=page,
            page_size=pageSize,
        ),
        timeout=_settings(request).rpc_timeout_seconds,
    )
    items = [media_json(m) for m in reply.media]
    return ok(items, count=len(items), page={"page": reply.page, "pageSize": reply.page_size, "total": reply.total})


def _frame(message: media_pb2.MediaEvent) -> ServerSentEvent:
    # The service's first message, without a media, is its own "live" marker.
    return sse_relay.event("media", event_json(message)) if message.media_id else sse_relay.ready()


@router.get(
    "/events",
    summary="Server-Sent Events: `ready`, then a `media` event per state change",
    response_class=EventSourceResponse,
)
async def events(request: Request) -> EventSourceResponse:
    call = _stub(request).WatchMedia(media_pb2.WatchMediaRequest())
    return EventSourceResponse(
        sse_relay.relay(call, _frame, ready_first=False),
        ping=int(_settings(request).sse_ping_seconds),
        headers=sse_relay.UNBUFFERED,
    )


@router.get(
    "/queue",
    response_model=dict[str, MediaQueueStats],
    summary="The media queues: waiting, active, completed, failed, and where jobs are",
)
async def queue_stats(request: Request) -> JSONResponse:
    reply = await _stub(request).GetQueueStats(
        media_pb2.GetQueueStatsRequest(), timeout=_settings(request).rpc_timeout_seconds
    )
    return ok({q.section: queue_stats_json(q) for q in reply.queues})


@router.post(
    "/sync",
    response_model=SyncQueued,
    status_code=202,
    summary="Copy media to or from S3, or delete their S3 copies: one media-sync job per media",
    dependencies=[requires(Scope.ADMIN)],
)
async def sync(request: Request, body: SyncBody) -> JSONResponse:
    stub = _stub(request)
    rpc = {
        SyncOperationName.upload: stub.SyncToS3,
        SyncOperationName.download: stub.SyncFromS3,
        SyncOperationName.delete: stub.DeleteFromS3,
    }[body.operation]
    reply: media_pb2.SyncResponse = await rpc(
        media_pb2.SyncRequest(media_ids=body.mediaIds, all=body.all, delete_source=body.deleteSource),
        timeout=_settings(request).rpc_timeout_seconds,
    )
    data = {"jobId": reply.job_id, "jobIds": list(reply.job_ids), "queued": reply.queued, "operation": body.operation}
    return ok(data, status_code=202)


DAY_MS = 24 * 3600 * 1000


@router.post(
    "/cleanup",
    response_model=CleanupResult,
    summary="Purge deleted (or failed) media for good: objects in the local store and S3, then records",
    dependencies=[requires(Scope.ADMIN)],
)
async def cleanup(request: Request, body: CleanupBody) -> JSONResponse:
    states = body.status if isinstance(body.status, list) else [body.status]
    if not states:
        raise InvalidArgument("status", "name deleted and/or failed")
    reply: media_pb2.CleanupResponse = await _stub(request).Cleanup(
        media_pb2.CleanupRequest(
            older_than_ms=(body.olderThanDays or 0) * DAY_MS,
            use_retention=body.olderThanDays is None,
            states=[STATE_VALUES[s.value] for s in states],
            dry_run=body.dryRun,
        ),
        timeout=_settings(request).rpc_timeout_seconds * 12,
    )
    answer: dict[str, Any] = {"deleted": reply.removed, "freedBytes": reply.bytes_freed, "dryRun": body.dryRun}
    if reply.job_id:  # too large to purge within the call: queued (its result says what went)
        answer.update(jobId=reply.job_id, queued=reply.queued)
    return ok(answer)


@router.get("/{media_id}", response_model=Media, summary="One media with its variants")
async def get_media(request: Request, media_id: str) -> JSONResponse:
    media = await _stub(request).GetMedia(
        media_pb2.GetMediaRequest(media_id=media_id), timeout=_settings(request).rpc_timeout_seconds
    )
    return ok(media_json(media))


@router.delete(
    "/{media_id}",
    response_model=MediaDeleted,
    summary="Soft-delete a media (its bytes are purged by cleanup)",
    dependencies=[requires(Scope.ADMIN)],
)
async def delete_media(request: Request, media_id: str) -> JSONResponse:
    await _stub(request).DeleteMedia(
        media_pb2.DeleteMediaRequest(media_id=media_id), timeout=_settings(request).rpc_timeout_seconds
    )
    return ok({"mediaId": media_id, "deleted": True})


@router.post(
    "/{media_id}/watermark",
    response_model=WatermarkQueued,
    status_code=202,
    summary="Watermark a ready media's variants with a logo or text (queued)",
    dependencies=[requires(Scope.OPERATE)],
)
async def watermark(request: Request, media_id: str, body: WatermarkBody) -> JSONResponse:
    answer = await _stub(request).Watermark(
        media_pb2.WatermarkRequest(
            media_id=media_id,
            text=body.text,
            overlay_media_id=body.watermarkId,
            position=POSITIONS[body.position],
            opacity=body.opacity,
            scale=body.scale,
            variants=body.variants,
        ),
        timeout=_settings(request).rpc_timeout_seconds,
    )
    return ok({"jobId": answer.job_id, "mediaId": answer.media_id}, status_code=202)


@router.delete(
    "/{media_id}/watermark",
    response_model=WatermarkRemoved,
    summary="Remove the watermarked outputs (`variants` query parameter: only those; the plain ones stay)",
    dependencies=[requires(Scope.OPERATE)],
)
async def remove_watermark(
    request: Request, media_id: str, variants: Annotated[list[str] | None, Query(max_length=16)] = None
) -> JSONResponse:
    reply = await _stub(request).RemoveWatermark(
        media_pb2.RemoveWatermarkRequest(media_id=media_id, variants=variants or []),
        timeout=_settings(request).rpc_timeout_seconds,
    )
    return ok({"mediaId": media_id, "removed": list(reply.removed)})


@router.get(
    "/{media_id}/variants/{name}",
    summary="A variant's bytes (ETag, Cache-Control; 304 when unchanged)",
    response_class=Response,
    responses={
        200: {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
    },
)
async def variant_bytes(request: Request, media_id: str, name: str) -> Response:
    held = request.headers.get("if-none-match", "").removeprefix("W/").strip('"')
    call = _stub(request).ReadVariant(
        media_pb2.ReadVariantRequest(media_id=media_id, name=name, if_none_match=held),
        timeout=_settings(request).rpc_timeout_seconds,
    )
    chunks: list[bytes] = []
    header: media_pb2.VariantHeader | None = None
    async for part in call:
        if part.WhichOneof("part") == "header":
            header = part.header
        else:
            chunks.append(part.chunk)
    assert header is not None  # the service's first message is always the header
    headers = {"ETag": f'"{header.etag}"', "Cache-Control": VARIANT_CACHE_CONTROL}
    if header.not_modified:
        return Response(status_code=304, headers=headers)
    return Response(b"".join(chunks), media_type=header.content_type, headers=headers)
