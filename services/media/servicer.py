"""The gRPC face of the media service: translate, delegate to :class:`MediaLibrary`, translate back.

``Upload`` is client streaming: the first message carries ``metadata``, every further one a
``chunk``. Refusals arrive as soon as the bytes show them (INVALID_ARGUMENT with reason
UnsupportedMediaType → HTTP 415; RESOURCE_EXHAUSTED with reason PayloadTooLarge → 413). ``Watermark`` checks the request
and queues a ``media-watermark`` job. ``SyncToS3``, ``SyncFromS3`` and ``DeleteFromS3`` queue one
``media-sync`` job per media (:class:`SyncRequests`). ``Cleanup`` counts (dry run) or purges within
the call, or queues a large purge as a job and answers its ``job_id`` (:meth:`MediaCleanup.request`);
``older_than_ms`` is an age (0: none), empty ``states`` means failed and deleted.
Every RPC of the contract is served here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from switchboard.media.v1 import media_pb2, media_pb2_grpc

from runtime.auth import Scope, method_scopes
from runtime.errors import InvalidArgument
from runtime.grpc_drain import draining_on_refusal
from runtime.grpc_server import shutdown_event
from runtime.grpc_types import ServicerContext as Context
from services.media.cleanup import PURGEABLE, MediaCleanup
from services.media.convert import media_to_pb, state_from_pb, state_to_pb, variant_spec
from services.media.domain.records import MediaRecord, MediaState
from services.media.domain.watermark import DEFAULT_OPACITY, DEFAULT_SCALE, Position, WatermarkSpec
from services.media.events import subscription
from services.media.library import MediaLibrary, UploadRequest
from services.media.queue_stats import MediaQueues
from services.media.sync import SyncOperation
from services.media.sync_requests import SyncRequests

SERVICE_NAME = media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name
SCOPES = method_scopes(
    media_pb2.DESCRIPTOR.services_by_name["MediaService"],
    {
        **dict.fromkeys(
            ("GetMedia", "GetStats", "ListMedia", "WatchMedia", "ReadVariant", "GetQueueStats"), Scope.READ
        ),
        **dict.fromkeys(("Upload", "Watermark", "RemoveWatermark"), Scope.OPERATE),
        **dict.fromkeys(("SyncToS3", "SyncFromS3", "DeleteFromS3", "DeleteMedia", "Cleanup"), Scope.ADMIN),
    },
)
"""The scope of every MediaService method (the server refuses to start with one missing)."""
DEFAULT_PAGE_SIZE = 20
READ_CHUNK = 256 * 1024


_POSITIONS = {
    media_pb2.WATERMARK_POSITION_UNSPECIFIED: Position.BOTTOM_RIGHT,
    media_pb2.WATERMARK_POSITION_TOP_LEFT: Position.TOP_LEFT,
    media_pb2.WATERMARK_POSITION_TOP_RIGHT: Position.TOP_RIGHT,
    media_pb2.WATERMARK_POSITION_BOTTOM_LEFT: Position.BOTTOM_LEFT,
    media_pb2.WATERMARK_POSITION_BOTTOM_RIGHT: Position.BOTTOM_RIGHT,
    media_pb2.WATERMARK_POSITION_CENTER: Position.CENTER,
    media_pb2.WATERMARK_POSITION_TILE: Position.TILE,
}


def watermark_spec(request: media_pb2.WatermarkRequest) -> WatermarkSpec:
    """The request as the domain's spec (0 opacity/scale: the defaults); InvalidArgument naming a field."""
    position = _POSITIONS.get(request.position)
    if position is None:
        raise InvalidArgument("position", f"unknown watermark position {request.position}")
    return WatermarkSpec(
        position=position,
        opacity=request.opacity or DEFAULT_OPACITY,
        scale=request.scale or DEFAULT_SCALE,
        text=request.text,
        overlay_media_id=request.overlay_media_id,
        variants=tuple(request.variants),
    )


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, library: MediaLibrary, sync: SyncRequests, queues: MediaQueues, cleanup: MediaCleanup) -> None:
        self.library = library
        self.sync = sync
        self.queues = queues
        self.cleanup = cleanup

    def _media(self, record: MediaRecord) -> media_pb2.Media:
        return media_to_pb(record, self.library.variant_urls(record))

    async def Upload(
        self, request_iterator: AsyncIterator[media_pb2.UploadRequest], context: Context
    ) -> media_pb2.UploadResponse:
        # A refusal (no image, over the limit) waits for the client's half-close (runtime.grpc_drain).
        async with draining_on_refusal(request_iterator, context, max_bytes=self.library.max_upload_bytes):
            first = await anext(request_iterator, None)
            if first is None or first.WhichOneof("part") != "metadata":
                raise InvalidArgument("metadata", "the first message of an upload must carry its metadata")
            meta = first.metadata
            request = UploadRequest(
                filename=meta.filename,
                owner_id=meta.owner_id,
                entity_type=meta.entity_type,
                variants=[variant_spec(v) for v in meta.variants],
                keep_metadata=meta.keep_exif,
                labels=dict(meta.labels),
                declared_size=meta.size_bytes,
            )
            result = await self.library.upload(request, _chunks(request_iterator))
        return media_pb2.UploadResponse(media=self._media(result.record), job_id=result.record.job_id)

    async def Watermark(self, request: media_pb2.WatermarkRequest, context: Context) -> media_pb2.WatermarkResponse:
        job_id = await self.library.watermark(request.media_id, watermark_spec(request))
        return media_pb2.WatermarkResponse(job_id=job_id, media_id=request.media_id)

    async def RemoveWatermark(
        self, request: media_pb2.RemoveWatermarkRequest, context: Context
    ) -> media_pb2.RemoveWatermarkResponse:
        removed = await self.library.remove_watermark(request.media_id, list(request.variants))
        return media_pb2.RemoveWatermarkResponse(removed=removed)

    async def GetMedia(self, request: media_pb2.GetMediaRequest, context: Context) -> media_pb2.Media:
        return self._media(await self.library.get(request.media_id))

    async def ListMedia(self, request: media_pb2.ListMediaRequest, context: Context) -> media_pb2.ListMediaResponse:
        page = request.page or 1
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        records, total = await self.library.list(
            entity_type=request.entity_type,
            owner_id=request.owner_id,
            state=state_from_pb(request.state),
            page=page,
            page_size=page_size,
        )
        return media_pb2.ListMediaResponse(
            media=[self._media(r) for r in records], page=page, page_size=page_size, total=total
        )

    async def DeleteMedia(
        self, request: media_pb2.DeleteMediaRequest, context: Context
    ) -> media_pb2.DeleteMediaResponse:
        await self.library.delete(request.media_id)
        return media_pb2.DeleteMediaResponse(deleted=True)

    async def WatchMedia(
        self, request: media_pb2.WatchMediaRequest, context: Context
    ) -> AsyncIterator[media_pb2.MediaEvent]:
        """A first message without ``media_id`` says the subscription is live; then every change,
        until the caller leaves or the server drains."""
        stop = asyncio.create_task(shutdown_event().wait())
        async with subscription(self.library.events.redis) as events:
            yield media_pb2.MediaEvent()
            try:
                while True:
                    following = asyncio.ensure_future(anext(events))
                    await asyncio.wait({following, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not following.done():
                        following.cancel()
                        return
                    event = following.result()
                    yield media_pb2.MediaEvent(
                        media_id=event["mediaId"],
                        state=state_to_pb(MediaState(event["state"])),
                        error=event.get("error", ""),
                        updated_at_ms=int(event.get("updatedAt", 0)),
                    )
            finally:
                stop.cancel()

    async def ReadVariant(
        self, request: media_pb2.ReadVariantRequest, context: Context
    ) -> AsyncIterator[media_pb2.VariantChunk]:
        variant, data = await self.library.read_variant(request.media_id, request.name)
        header = media_pb2.VariantHeader(content_type=variant.content_type, size_bytes=len(data), etag=variant.etag)
        if request.if_none_match and request.if_none_match == variant.etag:
            header.not_modified = True
            yield media_pb2.VariantChunk(header=header)
            return
        yield media_pb2.VariantChunk(header=header)
        for start in range(0, len(data), READ_CHUNK):
            yield media_pb2.VariantChunk(chunk=data[start : start + READ_CHUNK])

    async def SyncToS3(self, request: media_pb2.SyncRequest, context: Context) -> media_pb2.SyncResponse:
        return await self._sync(SyncOperation.UPLOAD, request)

    async def SyncFromS3(self, request: media_pb2.SyncRequest, context: Context) -> media_pb2.SyncResponse:
        return await self._sync(SyncOperation.DOWNLOAD, request)

    async def DeleteFromS3(self, request: media_pb2.SyncRequest, context: Context) -> media_pb2.SyncResponse:
        return await self._sync(SyncOperation.DELETE, request)

    async def _sync(self, operation: SyncOperation, request: media_pb2.SyncRequest) -> media_pb2.SyncResponse:
        batch = await self.sync.request(
            operation, list(request.media_ids), all_media=request.all, delete_source=request.delete_source
        )
        return media_pb2.SyncResponse(job_id=batch.batch_id, queued=len(batch.job_ids), job_ids=batch.job_ids)

    async def Cleanup(self, request: media_pb2.CleanupRequest, context: Context) -> media_pb2.CleanupResponse:
        states = [state_from_pb(s) for s in request.states]
        if any(s is None for s in states):
            raise InvalidArgument("states", "name a state (deleted or failed)")
        answer = await self.cleanup.request(
            older_than_ms=self.cleanup.retention_ms if request.use_retention else request.older_than_ms,
            states=[s for s in states if s is not None] or PURGEABLE,
            dry_run=request.dry_run,
        )
        return media_pb2.CleanupResponse(
            removed=answer.deleted, bytes_freed=answer.freed_bytes, job_id=answer.job_id, queued=answer.queued
        )

    async def GetStats(self, request: media_pb2.GetStatsRequest, context: Context) -> media_pb2.MediaStats:
        stats = await self.library.stats()
        by_state: dict[str, int] = stats["by_state"]
        return media_pb2.MediaStats(
            total_count=sum(by_state.values()),
            total_bytes=stats["bytes"],
            count_by_state=by_state,
            synced_to_s3=stats["synced"],
        )

    async def GetQueueStats(
        self, request: media_pb2.GetQueueStatsRequest, context: Context
    ) -> media_pb2.GetQueueStatsResponse:
        stats = [
            media_pb2.MediaQueueStats(
                section=q.section,
                queue=q.queue,
                waiting=q.waiting or 0,
                active=q.active or 0,
                completed=q.completed or 0,
                failed=q.failed or 0,
                type=q.type,
                spooled=q.spooled,
                counts_unavailable=not q.counted,
            )
            for q in await self.queues.stats()
        ]
        return media_pb2.GetQueueStatsResponse(queues=stats)


async def _chunks(requests: AsyncIterator[media_pb2.UploadRequest]) -> AsyncIterator[bytes]:
    async for part in requests:
        if part.WhichOneof("part") != "chunk":
            raise InvalidArgument("chunk", "only the first message of an upload carries metadata")
        yield part.chunk
