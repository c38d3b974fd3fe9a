"""POST /api/admin/media/cleanup: deleted (or failed) media purged for good, through the gateway,
the media service and the local store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from switchboard.media.v1 import media_pb2

from runtime.queue import Worker
from services.media.settings import MediaSettings
from services.media.store import LocalStore
from tests.media.images import shared
from tests.media.support import MediaClient

pytestmark = pytest.mark.timeout(120)
PHOTO = shared("sk_rocket.jpg")


def stored_bytes(media: media_pb2.Media) -> int:
    return media.size_bytes + sum(v.size_bytes for v in media.variants)


def keys_of(media: media_pb2.Media) -> list[str]:
    return [f"originals/{media.media_id}", *(v.storage_key for v in media.variants)]


@dataclass
class CleanupRig:
    media: MediaClient
    gateway: httpx.AsyncClient
    local: LocalStore

    async def ready(self, data: bytes = PHOTO, owner: str = "cleanup") -> media_pb2.Media:
        media_id = (await self.media.upload(data, owner_id=owner)).media.media_id
        return await self.media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)

    async def cleanup(self, **body: Any) -> dict[str, Any]:
        response = await self.gateway.post("/api/admin/media/cleanup", json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def on_disk(self, media: media_pb2.Media) -> list[bool]:
        return [await self.local.stat(key) is not None for key in keys_of(media)]


@pytest.fixture
def rig(
    media: MediaClient, media_worker: Worker, gateway: httpx.AsyncClient, media_settings: MediaSettings
) -> CleanupRig:
    return CleanupRig(media, gateway, LocalStore(media_settings.data_dir / "media"))


async def test_a_deleted_media_is_purged_with_its_files_and_the_others_stay(rig: CleanupRig) -> None:
    gone = await rig.ready(PHOTO, owner="a")
    kept = await rig.ready(PHOTO, owner="b")
    assert (await rig.gateway.delete(f"/api/admin/media/{gone.media_id}")).status_code == 200

    assert await rig.cleanup(olderThanDays=0) == {
        "deleted": 1,
        "freedBytes": stored_bytes(gone),
        "dryRun": False,
    }
    assert (await rig.gateway.get(f"/api/admin/media/{gone.media_id}")).status_code == 404
    assert await rig.on_disk(gone) == [False] * 4
    assert await rig.on_disk(kept) == [True] * 4
    assert (await rig.gateway.get(f"/api/admin/media/{kept.media_id}")).json()["data"]["state"] == "ready"
    assert await rig.cleanup(olderThanDays=0) == {"deleted": 0, "freedBytes": 0, "dryRun": False}


async def test_a_media_deleted_more_recently_than_the_age_asked_stays(rig: CleanupRig) -> None:
    recent = await rig.ready()
    await rig.gateway.delete(f"/api/admin/media/{recent.media_id}")
    assert (await rig.cleanup(olderThanDays=1))["deleted"] == 0
    assert (await rig.cleanup())["deleted"] == 0  # the service's MEDIA_RETENTION_DAYS: 30
    assert await rig.on_disk(recent) == [True] * 4


async def test_a_dry_run_counts_and_removes_nothing(rig: CleanupRig) -> None:
    media = await rig.ready()
    await rig.gateway.delete(f"/api/admin/media/{media.media_id}")
    assert await rig.cleanup(olderThanDays=0, dryRun=True) == {
        "deleted": 1,
        "freedBytes": stored_bytes(media),
        "dryRun": True,
    }
    assert await rig.on_disk(media) == [True] * 4
    assert (await rig.gateway.get(f"/api/admin/media/{media.media_id}")).json()["data"]["state"] == "deleted"


async def test_failed_media_are_purged_only_when_asked_for(rig: CleanupRig) -> None:
    answer = await rig.media.upload(PHOTO[: len(PHOTO) // 2], owner_id="broken")
    failed = await rig.media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_FAILED)
    assert (await rig.cleanup(olderThanDays=0))["deleted"] == 0
    purged = await rig.cleanup(olderThanDays=0, status=["failed"])
    assert purged == {"deleted": 1, "freedBytes": failed.size_bytes, "dryRun": False}
    assert (await rig.gateway.get(f"/api/admin/media/{failed.media_id}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"olderThanDays": -1}, "olderThanDays"),
        ({"olderThanDays": "soon"}, "olderThanDays"),
        ({"status": "ready"}, "status"),
        ({"status": []}, "status"),
        ({"olderThan": 3}, "olderThan"),
    ],
)
async def test_a_bad_cleanup_request_is_refused_naming_the_field(
    gateway: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await gateway.post("/api/admin/media/cleanup", json=body)
    assert response.status_code == 400, response.text
    assert field in response.text
