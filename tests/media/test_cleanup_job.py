"""A cleanup asked for by hand that finds more media than MEDIA_CLEANUP_INLINE_MAX is queued as a
media-sync job (the call answers its id); smaller ones and dry runs are answered within the call."""

from __future__ import annotations

import httpx
import pytest
from switchboard.media.v1 import media_pb2

from devsupport.waiting import wait_until
from runtime.queue import JobInfo, QueueAdmin, Worker
from services.media.queues import sync_queue
from services.media.settings import MediaSettings
from services.media.store import LocalStore
from tests.gateway.conventions import check_against_openapi, convention_breaks
from tests.media.support import MediaClient
from tests.media.test_cleanup import PHOTO, CleanupRig, keys_of, stored_bytes

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def media_settings(media_settings: MediaSettings) -> MediaSettings:
    return media_settings.model_copy(update={"media_cleanup_inline_max": 1})


@pytest.fixture
def rig(
    media: MediaClient, media_worker: Worker, gateway: httpx.AsyncClient, media_settings: MediaSettings
) -> CleanupRig:
    return CleanupRig(media, gateway, LocalStore(media_settings.data_dir / "media"))


async def deleted(rig: CleanupRig, owner: str) -> media_pb2.Media:
    media = await rig.ready(PHOTO, owner=owner)
    assert (await rig.gateway.delete(f"/api/admin/media/{media.media_id}")).status_code == 200
    return media


async def test_a_purge_over_the_inline_limit_is_queued_and_the_job_purges_what_was_found(
    rig: CleanupRig, sync_worker: Worker, media_settings: MediaSettings
) -> None:
    gone = [await deleted(rig, "a"), await deleted(rig, "b")]
    answer = await rig.cleanup(olderThanDays=0)
    assert answer["jobId"].startswith("cleanup:")
    assert (answer["deleted"], answer["freedBytes"], answer["queued"]) == (0, 0, 2)

    admin = QueueAdmin(sync_queue(media_settings), sync_worker.redis)

    async def finished() -> JobInfo | None:
        job = await admin.job(answer["jobId"])
        return job if job.state in ("completed", "failed") else None

    job = await wait_until(finished, within=45, what="the queued purge finished")
    assert job.state == "completed"
    assert job.result == {"deleted": 2, "freedBytes": sum(stored_bytes(m) for m in gone)}
    for media in gone:
        assert (await rig.gateway.get(f"/api/admin/media/{media.media_id}")).status_code == 404
        assert [await rig.local.stat(k) for k in keys_of(media)] == [None] * 4


async def test_the_queued_answer_follows_the_convention_and_validates_against_the_published_schema(
    rig: CleanupRig,
) -> None:
    await deleted(rig, "a")
    await deleted(rig, "b")
    answer = await rig.gateway.post("/api/admin/media/cleanup", json={"olderThanDays": 0})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["data"]) == {"deleted", "freedBytes", "dryRun", "jobId", "queued"}
    assert convention_breaks(body) == []
    spec = (await rig.gateway.get("/openapi.json")).json()
    check_against_openapi(spec, "post", "/api/admin/media/cleanup", 200, body)


async def test_a_dry_run_over_the_limit_and_a_purge_within_it_are_answered_within_the_call(rig: CleanupRig) -> None:
    first, second = await deleted(rig, "a"), await deleted(rig, "b")
    counted = await rig.cleanup(olderThanDays=0, dryRun=True)
    assert counted == {"deleted": 2, "freedBytes": stored_bytes(first) + stored_bytes(second), "dryRun": True}

    answer = await rig.media.upload(PHOTO[: len(PHOTO) // 2], owner_id="broken")
    failed = await rig.media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_FAILED)
    purged = await rig.cleanup(olderThanDays=0, status="failed")  # finds 1: the limit
    assert purged == {"deleted": 1, "freedBytes": failed.size_bytes, "dryRun": False}
    assert (await rig.gateway.get(f"/api/admin/media/{first.media_id}")).json()["data"]["state"] == "deleted"
