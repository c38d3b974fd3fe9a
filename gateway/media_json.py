"""media.v1 messages as the JSON the ``/api/admin/media`` routes answer (camelCase, times in epoch ms)."""

from __future__ import annotations

from typing import Any

from switchboard.media.v1 import media_pb2

__all__ = ["STATE_NAMES", "event_json", "media_json", "queue_stats_json", "variant_url"]

STATE_NAMES: dict[int, str] = {
    media_pb2.MEDIA_STATE_PENDING: "pending",
    media_pb2.MEDIA_STATE_PROCESSING: "processing",
    media_pb2.MEDIA_STATE_READY: "ready",
    media_pb2.MEDIA_STATE_FAILED: "failed",
    media_pb2.MEDIA_STATE_DELETED: "deleted",
}


def variant_url(media_id: str, name: str) -> str:
    return f"/api/admin/media/{media_id}/variants/{name}"


def media_json(media: media_pb2.Media) -> dict[str, Any]:
    return {
        "mediaId": media.media_id,
        "state": STATE_NAMES.get(media.state, "unknown"),
        "filename": media.filename,
        "contentType": media.content_type,
        "width": media.width,
        "height": media.height,
        "sizeBytes": media.size_bytes,
        "sha256": media.sha256,
        "entityType": media.entity_type,
        "ownerId": media.owner_id,
        "variants": [
            {
                "name": v.name,
                "contentType": v.content_type,
                "width": v.width,
                "height": v.height,
                "sizeBytes": v.size_bytes,
                "url": v.url or variant_url(media.media_id, v.name),
            }
            for v in media.variants
        ],
        "syncedToS3": media.synced_to_s3,
        "error": media.error,
        "jobId": media.job_id,
        "createdAt": media.created_at_ms,
        "updatedAt": media.updated_at_ms,
    }


def event_json(event: media_pb2.MediaEvent) -> dict[str, Any]:
    return {
        "mediaId": event.media_id,
        "state": STATE_NAMES.get(event.state, "unknown"),
        "error": event.error,
        "updatedAt": event.updated_at_ms,
    }


def queue_stats_json(queue: media_pb2.MediaQueueStats) -> dict[str, Any]:
    """One media queue in the shape ``{waiting, active, completed, failed, type, spooled}``;
    ``type`` says where its jobs are: ``spool`` while a durable disk spool (any replica's) holds
    jobs of it not yet in Redis, else ``redis``; ``spooled`` counts those. While the media service
    cannot read Redis the four counts are ``null`` (unknown) and ``spooled`` is what is known."""
    unknown = queue.counts_unavailable
    return {
        "waiting": None if unknown else queue.waiting,
        "active": None if unknown else queue.active,
        "completed": None if unknown else queue.completed,
        "failed": None if unknown else queue.failed,
        "type": queue.type,
        "spooled": queue.spooled,
    }
