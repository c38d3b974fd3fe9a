"""Manual S3 sync through the gateway (POST /api/admin/media/sync) → media service → media-sync
worker → moto's S3 server: upload, download, delete, deleteSource, all, and refusals.

The processing worker here has no S3 settings, so nothing is synced until a test asks for it.
A media moved to S3 (deleteSource) is then read from there: watermarked, processed, its
watermarked outputs removed from both stores.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from switchboard.media.v1 import media_pb2

from devsupport.waiting import wait_until
from runtime.queue import JobInfo, QueueAdmin, Worker
from services.media.queues import processing_queue, sync_queue
from services.media.settings import MediaSettings
from services.media.store import LocalStore, S3Store
from tests.media.images import shared
from tests.media.support import MediaClient, S3Server, running_worker, with_s3
from tests.media.test_watermark import watermarked

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def media_settings(media_settings: MediaSettings, s3_server: S3Server) -> MediaSettings:
    return with_s3(media_settings, s3_server)


@pytest.fixture
async def media_worker(media_settings: MediaSettings) -> AsyncIterator[Worker]:
    """Processing only: this worker does not queue the automatic sync."""
    plain = media_settings.model_copy(update={"s3_bucket": ""})
    async with running_worker(plain, processing_queue(plain)) as worker:
        yield worker


@dataclass
class SyncRig:
    """The gateway, media service, processing and sync workers, both stores: what every test here drives."""

    media: MediaClient
    gateway: httpx.AsyncClient
    settings: MediaSettings
    worker: Worker
    bucket: S3Store
    local: LocalStore

    async def ready_media(self, photo: str = "sk_rocket.jpg") -> media_pb2.Media:
        media_id = (await self.media.upload(shared(photo), owner_id="sync")).media.media_id
        return await self.media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)

    async def sync(self, **body: Any) -> dict[str, Any]:
        response = await self.gateway.post("/api/admin/media/sync", json=body)
        assert response.status_code == 202, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def finished(self, job_id: str) -> JobInfo:
        admin = QueueAdmin(sync_queue(self.settings), self.worker.redis)

        async def done() -> JobInfo | None:
            job = await admin.job(job_id)
            return job if job.state in ("completed", "failed") else None

        job: JobInfo = await wait_until(done, within=45, what=f"sync job {job_id} finished")
        return job

    async def synced(self, **body: Any) -> JobInfo:
        """POST one media's sync and wait for its job."""
        (job_id,) = (await self.sync(**body))["jobIds"]
        return await self.finished(job_id)

    async def md5s(self, store: LocalStore | S3Store, media: media_pb2.Media) -> list[str | None]:
        keys = [f"originals/{media.media_id}", *(v.storage_key for v in media.variants)]
        return [info.md5 if (info := await store.stat(key)) else None for key in keys]


@pytest.fixture
async def rig(
    media: MediaClient,
    media_worker: Worker,
    sync_worker: Worker,
    gateway: httpx.AsyncClient,
    media_settings: MediaSettings,
    s3_bucket: S3Store,
) -> SyncRig:
    local = LocalStore(media_settings.data_dir / "media")
    return SyncRig(media, gateway, media_settings, sync_worker, s3_bucket, local)


async def test_an_upload_copies_a_ready_media_to_s3_and_marks_it_synced(rig: SyncRig) -> None:
    ready = await rig.ready_media()
    assert not ready.synced_to_s3
    answer = await rig.sync(mediaIds=[ready.media_id], operation="upload")
    assert answer["queued"] == 1
    assert answer["operation"] == "upload"
    assert answer["jobIds"] == [f"{answer['jobId']}:{ready.media_id}"]

    job = await rig.finished(answer["jobIds"][0])
    assert job.state == "completed"
    assert job.result == {
        "mediaId": ready.media_id,
        "operation": "upload",
        "copied": 4,
        "unchanged": 0,
        "sourceDeleted": 0,
    }
    assert (await rig.media.get(ready.media_id)).synced_to_s3
    assert await rig.md5s(rig.bucket, ready) == await rig.md5s(rig.local, ready)
    assert await rig.bucket.get_bytes(f"originals/{ready.media_id}") == shared("sk_rocket.jpg")


async def test_running_the_same_upload_again_rewrites_nothing(rig: SyncRig) -> None:
    ready = await rig.ready_media()
    await rig.synced(mediaIds=[ready.media_id])
    again = await rig.synced(mediaIds=[ready.media_id])
    assert (again.result["copied"], again.result["unchanged"]) == (0, 4)


async def test_an_upload_with_delete_source_moves_the_files_and_variants_are_then_read_from_s3(rig: SyncRig) -> None:
    ready = await rig.ready_media()
    before = await rig.md5s(rig.local, ready)
    job = await rig.synced(mediaIds=[ready.media_id], deleteSource=True)
    assert (job.state, job.result["copied"], job.result["sourceDeleted"]) == ("completed", 4, 4)
    assert await rig.md5s(rig.local, ready) == [None] * 4
    assert await rig.md5s(rig.bucket, ready) == before

    thumb = next(v for v in ready.variants if v.name == "thumb")
    response = await rig.gateway.get(f"/api/admin/media/{ready.media_id}/variants/thumb")
    assert response.status_code == 200
    assert response.content == await rig.bucket.get_bytes(thumb.storage_key)


async def test_a_download_with_delete_source_brings_the_files_back_and_empties_s3(rig: SyncRig) -> None:
    ready = await rig.ready_media()
    before = await rig.md5s(rig.local, ready)
    await rig.synced(mediaIds=[ready.media_id], deleteSource=True)

    job = await rig.synced(mediaIds=[ready.media_id], operation="download", deleteSource=True)
    assert (job.state, job.result["copied"], job.result["sourceDeleted"]) == ("completed", 4, 4)
    assert await rig.md5s(rig.local, ready) == before
    assert await rig.md5s(rig.bucket, ready) == [None] * 4
    assert not (await rig.media.get(ready.media_id)).synced_to_s3


async def test_a_delete_removes_the_s3_copies_and_keeps_the_local_ones(rig: SyncRig) -> None:
    ready = await rig.ready_media()
    before = await rig.md5s(rig.local, ready)
    await rig.synced(mediaIds=[ready.media_id])

    job = await rig.synced(mediaIds=[ready.media_id], operation="delete")
    assert (job.state, job.result["deleted"]) == ("completed", 4)
    assert await rig.md5s(rig.bucket, ready) == [None] * 4
    assert await rig.md5s(rig.local, ready) == before
    assert not (await rig.media.get(ready.media_id)).synced_to_s3


async def test_a_delete_refuses_to_remove_the_only_copy(rig: SyncRig) -> None:
    ready = await rig.ready_media()
    await rig.synced(mediaIds=[ready.media_id], deleteSource=True)

    job = await rig.synced(mediaIds=[ready.media_id], operation="delete")
    assert job.state == "failed"
    assert job.attempts == 1  # permanent: not retried
    assert "only copy" in job.errors[-1].error
    assert await rig.bucket.stat(f"originals/{ready.media_id}") is not None


async def test_all_uploads_every_ready_media(rig: SyncRig) -> None:
    first = await rig.ready_media("sk_rocket.jpg")
    second = await rig.ready_media("calla_rgba.png")
    answer = await rig.sync(all=True)
    assert answer["queued"] == 2
    assert sorted(answer["jobIds"]) == sorted(f"{answer['jobId']}:{m.media_id}" for m in (first, second))
    for job_id in answer["jobIds"]:
        assert (await rig.finished(job_id)).state == "completed"
    assert (await rig.media.get(first.media_id)).synced_to_s3
    assert (await rig.media.get(second.media_id)).synced_to_s3


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "mediaIds"),
        ({"all": True, "mediaIds": ["0" * 32]}, 400, "mediaIds"),
        ({"mediaIds": ["not-an-id"]}, 400, "mediaId"),
        ({"mediaIds": ["0" * 32]}, 404, None),
        ({"all": True, "operation": "sideways"}, 400, "operation"),
        ({"all": True, "operation": "delete", "deleteSource": True}, 400, "deleteSource"),
        ({"all": True, "deleteSource": "maybe"}, 400, "deleteSource"),
    ],
)
async def test_a_bad_sync_request_is_refused_naming_the_problem_and_queues_nothing(
    gateway: httpx.AsyncClient,
    media_settings: MediaSettings,
    redis: Redis,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    response = await gateway.post("/api/admin/media/sync", json=body)
    assert response.status_code == status, response.text
    assert response.json()["success"] is False
    if field is not None:
        assert field in response.text
    counts = await QueueAdmin(sync_queue(media_settings), redis).counts()
    assert counts.waiting == counts.delayed == 0


async def test_a_media_the_operation_does_not_apply_to_is_refused_naming_it(rig: SyncRig) -> None:
    ready = await rig.ready_media()
    not_in_s3 = await rig.gateway.post(
        "/api/admin/media/sync", json={"mediaIds": [ready.media_id], "operation": "download"}
    )
    assert not_in_s3.status_code == 400
    assert ready.media_id in not_in_s3.text
    assert "no copy in S3" in not_in_s3.text

    await rig.gateway.delete(f"/api/admin/media/{ready.media_id}")
    deleted = await rig.gateway.post("/api/admin/media/sync", json={"mediaIds": [ready.media_id]})
    assert deleted.status_code == 400
    assert "is deleted, not ready" in deleted.text


async def test_a_media_moved_to_s3_is_watermarked_from_s3_and_its_new_outputs_are_synced(
    rig: SyncRig, watermark_worker: Worker
) -> None:
    ready = await rig.ready_media()
    await rig.synced(mediaIds=[ready.media_id], deleteSource=True)
    assert await rig.md5s(rig.local, ready) == [None] * 4

    answer = await rig.gateway.post(f"/api/admin/media/{ready.media_id}/watermark", json={"text": "ACME"})
    assert answer.status_code == 202, answer.text
    marked = await watermarked(rig.gateway, ready.media_id, {"thumb", "medium", "large"})
    assert marked["state"] == "ready"

    async def synced() -> media_pb2.Media | None:
        media = await rig.media.get(ready.media_id)
        return media if media.synced_to_s3 else None

    after = await wait_until(synced, within=45, what="the watermarked outputs synced")
    outputs = [v for v in after.variants if v.name.endswith(".watermarked")]
    assert len(outputs) == 3
    for output in outputs:
        assert await rig.bucket.get_bytes(output.storage_key) == await rig.local.get_bytes(output.storage_key)
    assert await rig.md5s(rig.local, ready) == [None] * 4  # the moved objects stay in S3 only


async def test_removing_a_watermark_removes_its_outputs_from_s3_too(rig: SyncRig, watermark_worker: Worker) -> None:
    ready = await rig.ready_media()
    answer = await rig.gateway.post(
        f"/api/admin/media/{ready.media_id}/watermark", json={"text": "ACME", "variants": ["thumb"]}
    )
    assert answer.status_code == 202, answer.text
    await watermarked(rig.gateway, ready.media_id, {"thumb"})
    await rig.synced(mediaIds=[ready.media_id])
    output = next(v for v in (await rig.media.get(ready.media_id)).variants if v.name == "thumb.watermarked")
    assert await rig.bucket.stat(output.storage_key) is not None

    removed = await rig.gateway.delete(f"/api/admin/media/{ready.media_id}/watermark")
    assert removed.status_code == 200, removed.text
    assert await rig.bucket.stat(output.storage_key) is None
    assert await rig.local.stat(output.storage_key) is None
    assert await rig.bucket.stat(f"originals/{ready.media_id}") is not None


async def test_an_original_found_only_in_s3_is_processed_from_there(
    media: MediaClient, media_settings: MediaSettings, s3_bucket: S3Store
) -> None:
    pending = (await media.upload(shared("sk_rocket.jpg"), owner_id="moved")).media  # no worker yet
    key = f"originals/{pending.media_id}"
    bucket, local = s3_bucket, LocalStore(media_settings.data_dir / "media")
    await bucket.put_bytes(key, await local.get_bytes(key), pending.content_type)
    assert await local.delete(key)

    async with running_worker(media_settings, processing_queue(media_settings)):
        ready = await media.wait_state(pending.media_id, media_pb2.MEDIA_STATE_READY)
    assert {v.name for v in ready.variants} == {"thumb", "medium", "large"}
