"""Wiring: the media service's and the media worker's parts, built from the settings.

The gRPC service (``python -m services.media``) takes uploads and answers reads; the worker
(``python -m services.media.worker``) processes. Both open the same database, local store
(``DATA_DIR/media``) and Redis; they may run on different machines when DATA_DIR is shared.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from switchboard.media.v1 import media_pb2_grpc

from runtime.db import create_engine, db_health_check
from runtime.grpc_server import GrpcService
from runtime.queue import DiskSpool, QueueAdmin, QueueClient
from runtime.redis import create_redis, redis_health_check
from runtime.supervision import TaskSupervisor
from services.media.cleanup import MediaCleanup
from services.media.db import MediaDatabase
from services.media.events import EventPublisher
from services.media.jobs import CLEANER, PROCESSOR, REQUEUER, SYNCER, WATERMARKER
from services.media.library import MediaLibrary
from services.media.migrate import upgrade
from services.media.processing import MediaProcessor
from services.media.queue_stats import MediaQueues
from services.media.queues import (
    PROCESS_JOB,
    PROCESSING_QUEUE,
    PURGE_REQUESTED_JOB,
    SYNC_QUEUE,
    WATERMARK_QUEUE,
    processing_queue,
    sync_queue,
    watermark_queue,
)
from services.media.requeue import PendingRequeue
from services.media.servicer import SCOPES, SERVICE_NAME, MediaServicer
from services.media.settings import MediaSettings
from services.media.spool_markers import SpoolMarkers
from services.media.store import LocalStore, S3Store, s3_client
from services.media.sync import MediaSync
from services.media.sync_requests import SyncRequests
from services.media.watermarking import MediaWatermarker


@dataclass
class MediaParts:
    """What both processes share: connections, the database, the local and S3 stores, the event publisher."""

    settings: MediaSettings
    redis: Redis
    engine: AsyncEngine
    database: MediaDatabase
    store: LocalStore
    events: EventPublisher
    remote: S3Store | None  # with S3_BUCKET set: one client for the whole process

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
        if self.remote is not None:
            self.remote.close()


async def prepare_database(settings: MediaSettings) -> None:
    """Apply the media migrations when ``MEDIA_MIGRATE_ON_START`` (idempotent)."""
    if settings.media_migrate_on_start:
        await upgrade(settings.async_database_url)


def open_parts(settings: MediaSettings, *, client_name: str) -> MediaParts:
    redis = create_redis(settings.redis_url, connect_timeout=0.5, socket_timeout=5.0, client_name=client_name)
    engine = create_engine(settings.async_database_url)
    return MediaParts(
        settings,
        redis,
        engine,
        MediaDatabase(engine),
        LocalStore(settings.data_dir / "media"),
        EventPublisher(redis),
        s3_store(settings),
    )


@dataclass
class MediaApp:
    parts: MediaParts
    processing: QueueClient
    watermarking: QueueClient
    syncing: QueueClient
    library: MediaLibrary
    sync: SyncRequests
    queues: MediaQueues
    cleanup: MediaCleanup
    tasks: TaskSupervisor

    async def close(self) -> None:
        self.tasks.close()
        await self.queues.stop()
        await self.processing.close()
        await self.watermarking.close()
        await self.syncing.close()
        await self.parts.close()

    def grpc_service(self) -> GrpcService:
        servicer = MediaServicer(self.library, self.sync, self.queues, self.cleanup)
        return GrpcService(
            name="media",
            address=self.parts.settings.media_addr,
            register=functools.partial(media_pb2_grpc.add_MediaServiceServicer_to_server, servicer),
            service_names=[SERVICE_NAME],
            scopes=SCOPES,
            health_checks={"redis": redis_health_check(self.parts.redis), "db": db_health_check(self.parts.engine)},
            tasks=self.tasks,  # the queue gauges and spool marker loop
            shutdown_hooks=[self.close],
        )


async def create_app(settings: MediaSettings) -> MediaApp:
    """The gRPC service's parts (migrations are ``prepare_database``'s, run before)."""
    parts = open_parts(settings, client_name="media")
    spool = DiskSpool(spool_path(settings))
    processing = QueueClient(processing_queue(settings), parts.redis, spool=spool)
    watermarking = QueueClient(watermark_queue(settings), parts.redis, spool=spool)
    await processing.start()
    await watermarking.start()
    remote = parts.remote
    # media-sync also takes the large cleanups asked for by hand, S3 or not.
    sync = QueueClient(sync_queue(settings), parts.redis, spool=spool)
    await sync.start()
    library = MediaLibrary(
        parts.database,
        parts.store,
        processing,
        parts.events,
        watermarking=watermarking,
        presets=settings.presets,
        max_upload_bytes=settings.media_max_upload_bytes,
        max_pixels=settings.media_max_pixels,
        remote=remote,
        presign_expires_s=settings.media_presign_expires_s,
    )
    producers = {PROCESSING_QUEUE: processing, WATERMARK_QUEUE: watermarking, SYNC_QUEUE: sync}
    interval_s = settings.media_queue_metrics_interval_s
    markers = SpoolMarkers(spool_markers_dir(settings), spool.path, stale_after_s=max(3 * interval_s, 15.0))
    tasks = TaskSupervisor()
    queues = MediaQueues(parts.redis, producers, interval_s=interval_s, markers=markers, tasks=tasks)
    queues.start()
    sync_requests = SyncRequests(parts.database, sync if remote is not None else None)
    cleanup = media_cleanup(parts, remote, jobs=sync)
    return MediaApp(parts, processing, watermarking, sync, library, sync_requests, queues, cleanup, tasks)


def spool_path(settings: MediaSettings) -> Path:
    """The producers' durable spool: ``MEDIA_SPOOL_PATH``, by default a file under DATA_DIR
    (processes on one machine may share it; replicas on several machines each need their own on
    a local disk, see :mod:`services.media.spool_markers`)."""
    return settings.media_spool_path or settings.data_dir / "media" / "spool.sqlite3"


def spool_markers_dir(settings: MediaSettings) -> Path:
    """Where the replicas publish their spools' counts: on DATA_DIR, which they share."""
    return settings.data_dir / "media" / "spools"


def s3_store(settings: MediaSettings) -> S3Store | None:
    """The S3 store when ``S3_BUCKET`` is set, else ``None`` (everything stays local)."""
    if not settings.s3_bucket:
        return None
    client = s3_client(
        settings.s3_endpoint_url, settings.aws_access_key_id, settings.aws_secret_access_key, settings.aws_region
    )
    return S3Store(client, settings.s3_bucket)


def media_cleanup(parts: MediaParts, remote: S3Store | None, *, jobs: QueueClient | None = None) -> MediaCleanup:
    """``jobs``: the media-sync producer a large requested purge is queued on (the service's)."""
    settings = parts.settings
    return MediaCleanup(
        parts.database,
        parts.store,
        remote,
        retention_days=settings.media_retention_days,
        temp_max_age_s=settings.media_temp_max_age_s,
        jobs=jobs,
        job_name=PURGE_REQUESTED_JOB,
        inline_max=settings.media_cleanup_inline_max,
    )


async def worker_context(parts: MediaParts, queue: str = PROCESSING_QUEUE) -> dict[str, object]:
    """What the job functions of ``queue`` find in ``ctx``; close it with :func:`close_worker_context`."""
    settings = parts.settings
    if queue == SYNC_QUEUE:
        remote = parts.remote
        context: dict[str, object] = {CLEANER: media_cleanup(parts, remote)}
        if remote is not None:  # without S3 its sync jobs fail at once (PermanentError naming S3_BUCKET)
            context[SYNCER] = MediaSync(parts.database, parts.store, remote, parts.events)
        return context
    sync = None
    remote = parts.remote
    if remote is not None:
        sync = QueueClient(sync_queue(settings), parts.redis)
        await sync.start()
    if queue == WATERMARK_QUEUE:
        return {WATERMARKER: MediaWatermarker(parts.database, parts.store, parts.events, sync=sync, remote=remote)}
    processor = MediaProcessor(
        parts.database, parts.store, parts.events, max_pixels=settings.media_max_pixels, sync=sync, remote=remote
    )
    return {PROCESSOR: processor, REQUEUER: pending_requeue(parts)}


def pending_requeue(parts: MediaParts) -> PendingRequeue:
    """The pending sweep of a media-processing worker (no spool: a sweep without Redis is retried)."""
    spec = processing_queue(parts.settings)
    return PendingRequeue(
        parts.database,
        QueueClient(spec, parts.redis),
        QueueAdmin(spec, parts.redis),
        job_name=PROCESS_JOB,
        after_s=parts.settings.media_pending_requeue_after_s,
    )


async def close_worker_context(context: dict[str, object]) -> None:
    for job_owner in (context.get(PROCESSOR), context.get(WATERMARKER)):
        if isinstance(job_owner, MediaProcessor | MediaWatermarker) and job_owner.sync is not None:
            await job_owner.sync.close()
    requeue = context.get(REQUEUER)
    if isinstance(requeue, PendingRequeue):
        await requeue.processing.close()
