"""The gateway streams an upload to the media store as it arrives, never holding the whole file:
the media service has the first bytes on disk while the client has not sent the rest yet (a
gateway that read the whole body first would leave the client waiting for that forever)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from devsupport.auth import AUTH_HEADERS
from devsupport.waiting import wait_until
from services.media.settings import MediaSettings
from tests.media.images import shared
from tests.media.test_gateway_media import form

PHOTO = shared("exif_o6_gps_dragonfly.jpg")  # 1.5 MB
FIRST = 512 * 1024


def uploads_in_progress(data_dir: Path) -> int:
    """Bytes the media service has written of uploads not yet complete (its store's tmp/)."""
    return sum(p.stat().st_size for p in data_dir.rglob("tmp/upload-*") if p.is_file())


async def test_the_first_bytes_reach_the_media_store_before_the_client_sent_the_rest(
    live_media_gateway: str, media_settings: MediaSettings
) -> None:
    body, content_type = form(PHOTO)
    head = body.index(PHOTO) + FIRST  # the form's header and the file's first 512 KiB
    arrived: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, head, 64 * 1024):
            yield body[start : min(start + 64 * 1024, head)]
        arrived.append(
            await wait_until(
                lambda: uploads_in_progress(media_settings.data_dir) or None,
                within=30,
                what="the first bytes in the media store",
            )
        )
        yield body[head:]

    async with httpx.AsyncClient(base_url=live_media_gateway, headers=AUTH_HEADERS, timeout=60) as client:
        answer = await client.post(
            "/api/admin/media/upload-async", content=chunks(), headers={"Content-Type": content_type}
        )
    assert answer.status_code == 202, answer.text
    assert answer.json()["data"]["state"] == "pending"
    assert 0 < arrived[0] <= FIRST  # some of the first part, none of the rest
    assert uploads_in_progress(media_settings.data_dir) == 0  # the temporary file became the original
