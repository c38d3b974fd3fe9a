"""The media routes of the gateway, in front of the real media service and queue admin."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from devsupport.auth import AUTH_HEADERS
from devsupport.waiting import wait_until
from runtime.queue import QueueClient, Worker
from services.media.queues import SYNC_JOB, sync_queue
from services.media.settings import MediaSettings
from tests.media.images import encoded, gradient, shared, webp_chunks

PHOTO = shared("sk_rocket.jpg")


def form(data: bytes, filename: str = "rocket.jpg", **fields: str) -> tuple[bytes, str]:
    """A multipart body with ``fields`` first, then ``file``; and its Content-Type."""
    boundary = "sbtestboundary7MA4YWxk"
    body = b""
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def post_upload(gateway: httpx.AsyncClient, data: bytes, **fields: str) -> httpx.Response:
    body, content_type = form(data, **fields)
    return await gateway.post("/api/admin/media/upload-async", content=body, headers={"Content-Type": content_type})


async def ready(gateway: httpx.AsyncClient, media_id: str) -> dict[str, object]:
    async def check() -> dict[str, object] | None:
        data: dict[str, object] = (await gateway.get(f"/api/admin/media/{media_id}")).json()["data"]
        return data if data["state"] == "ready" else None

    found: dict[str, object] = await wait_until(check, within=45, what=f"media {media_id} ready")
    return found


async def test_an_upload_is_accepted_processed_and_served_with_cache_headers(
    gateway: httpx.AsyncClient, media_worker: Worker
) -> None:
    answer = await post_upload(gateway, PHOTO, entityType="company_photo", ownerId="op-7")
    assert answer.status_code == 202
    body = answer.json()
    assert body["success"] is True
    assert body["data"]["state"] == "pending"
    media = await ready(gateway, body["data"]["mediaId"])
    assert (media["entityType"], media["ownerId"], media["filename"]) == ("company_photo", "op-7", "rocket.jpg")
    assert media["jobId"] == body["data"]["jobId"]
    thumb = next(v for v in media["variants"] if v["name"] == "thumb")  # type: ignore[attr-defined]
    served = await gateway.get(thumb["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert len(served.content) == thumb["sizeBytes"]
    assert "max-age" in served.headers["cache-control"]
    again = await gateway.get(thumb["url"], headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_fields_may_come_as_query_parameters(gateway: httpx.AsyncClient) -> None:
    body, content_type = form(PHOTO)
    answer = await gateway.post(
        "/api/admin/media/upload-async?entityType=user_avatar&ownerId=u9",
        content=body,
        headers={"Content-Type": content_type},
    )
    media = (await gateway.get(f"/api/admin/media/{answer.json()['data']['mediaId']}")).json()["data"]
    assert (media["entityType"], media["ownerId"]) == ("user_avatar", "u9")


@pytest.mark.parametrize("data", [b"<html><body>not an image</body></html>" * 10, b"%PDF-1.7\n", b""])
async def test_bytes_that_are_no_image_are_415(gateway: httpx.AsyncClient, data: bytes) -> None:
    answer = await post_upload(gateway, data)
    assert answer.status_code == 415
    assert answer.json()["error"]["details"]["field"] == "file"


async def test_a_declared_length_over_the_limit_is_413_before_reading(gateway: httpx.AsyncClient) -> None:
    answer = await gateway.post(
        "/api/admin/media/upload-async",
        content=b"x" * 10,
        headers={"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(50_000_000)},
    )
    assert answer.status_code == 413


async def post_streamed_over_limit(gateway: httpx.AsyncClient) -> httpx.Response:
    """A file over the gateway's 2 MB limit, sent without a Content-Length (found while streaming)."""
    body, content_type = form(PHOTO[:64] + bytes(3_000_000))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    return await gateway.post("/api/admin/media/upload-async", content=chunks(), headers={"Content-Type": content_type})


async def test_a_streamed_file_is_413_as_soon_as_it_passes_the_limit(gateway: httpx.AsyncClient) -> None:
    answer = await post_streamed_over_limit(gateway)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "RESOURCE_EXHAUSTED"


async def test_a_form_without_a_file_names_the_field(gateway: httpx.AsyncClient) -> None:
    boundary = "xyz"
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="ownerId"\r\n\r\nu1\r\n--{boundary}--\r\n'
    answer = await gateway.post(
        "/api/admin/media/upload-async",
        content=body.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["details"]["field"] == "file"


def exif_photo() -> bytes:
    """A JPEG with a camera make in its EXIF, stored sideways (orientation 6)."""
    exif = Image.Exif()
    exif[0x010F] = "ACME Cameras"  # Make
    exif[0x0112] = 6
    return encoded(gradient((320, 200)), "JPEG", exif=exif.tobytes())


async def large_variant_exif(gateway: httpx.AsyncClient, media_id: str) -> dict[int, object] | None:
    """The EXIF of the media's ``large`` variant as served, ``None`` when it has no EXIF chunk."""
    media = await ready(gateway, media_id)
    large = next(v for v in media["variants"] if v["name"] == "large")  # type: ignore[attr-defined]
    data = (await gateway.get(large["url"])).content
    if b"EXIF" not in webp_chunks(data):
        return None
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif())


async def test_keep_metadata_true_keeps_the_exif_and_without_it_every_piece_is_stripped(
    gateway: httpx.AsyncClient, media_worker: Worker
) -> None:
    photo = exif_photo()
    kept = await post_upload(gateway, photo, ownerId="keeps", keepMetadata="true")
    stripped = await post_upload(gateway, photo, ownerId="strips")
    declined = await gateway.post(  # the query form, as for the other fields
        "/api/admin/media/upload-async?ownerId=declines&keepMetadata=false",
        content=form(photo)[0],
        headers={"Content-Type": form(photo)[1]},
    )
    assert [a.status_code for a in (kept, stripped, declined)] == [202, 202, 202]
    assert await large_variant_exif(gateway, kept.json()["data"]["mediaId"]) == {0x010F: "ACME Cameras", 0x0112: 1}
    assert await large_variant_exif(gateway, stripped.json()["data"]["mediaId"]) is None
    assert await large_variant_exif(gateway, declined.json()["data"]["mediaId"]) is None


@pytest.mark.parametrize(("where", "value"), [("form", "yes"), ("form", "TRUE"), ("query", "1")])
async def test_a_keep_metadata_that_is_not_true_or_false_is_400_naming_the_field(
    gateway: httpx.AsyncClient, where: str, value: str
) -> None:
    if where == "form":
        answer = await post_upload(gateway, PHOTO, keepMetadata=value)
    else:
        body, content_type = form(PHOTO)
        answer = await gateway.post(
            "/api/admin/media/upload-async",
            params={"keepMetadata": value},
            content=body,
            headers={"Content-Type": content_type},
        )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("INVALID_ARGUMENT", "keepMetadata")
    assert repr(value) in error["message"]
    listed = (await gateway.get("/api/admin/media")).json()["data"]
    assert listed == []  # refused before anything was stored


async def test_list_get_and_soft_delete(gateway: httpx.AsyncClient) -> None:
    media_id = (await post_upload(gateway, PHOTO, ownerId="lister")).json()["data"]["mediaId"]
    listed = (await gateway.get("/api/admin/media", params={"ownerId": "lister", "state": "pending"})).json()
    assert [m["mediaId"] for m in listed["data"]] == [media_id]
    assert listed["meta"]["page"] == {"page": 1, "pageSize": 20, "total": 1}
    assert (await gateway.delete(f"/api/admin/media/{media_id}")).json()["data"]["deleted"] is True
    assert (await gateway.get(f"/api/admin/media/{media_id}")).json()["data"]["state"] == "deleted"
    assert (await gateway.delete(f"/api/admin/media/{media_id}")).status_code == 400
    assert (await gateway.get("/api/admin/media/" + "f" * 32)).status_code == 404
    assert (await gateway.get("/api/admin/media", params={"state": "shiny"})).status_code == 400


async def test_queue_stats_show_the_processing_queue(gateway: httpx.AsyncClient, media_worker: Worker) -> None:
    media_id = (await post_upload(gateway, PHOTO)).json()["data"]["mediaId"]
    await ready(gateway, media_id)

    async def completed() -> dict[str, object] | None:
        stats: dict[str, object] = (await gateway.get("/api/admin/media/queue")).json()["data"]["processing"]
        return stats if stats["completed"] == 1 else None

    stats = await wait_until(completed, within=20, what="one completed processing job")
    assert stats == {"waiting": 0, "active": 0, "completed": 1, "failed": 0, "type": "redis", "spooled": 0}


async def test_queue_stats_show_the_watermark_and_sync_queues_too(
    gateway: httpx.AsyncClient, media_worker: Worker, watermark_worker: Worker, media_settings: MediaSettings
) -> None:
    media_id = (await post_upload(gateway, PHOTO)).json()["data"]["mediaId"]
    await ready(gateway, media_id)
    idle = (await gateway.get("/api/admin/media/queue")).json()["data"]
    assert idle["sync"] == {"waiting": 0, "active": 0, "completed": 0, "failed": 0, "type": "redis", "spooled": 0}
    await gateway.post(f"/api/admin/media/{media_id}/watermark", json={"text": "ACME"})
    sync = QueueClient(sync_queue(media_settings), watermark_worker.redis)  # no sync worker runs here
    await sync.enqueue(SYNC_JOB, {"media_id": media_id}, job_id=f"stats:{media_id}")
    await sync.close()

    async def counted() -> dict[str, dict[str, object]] | None:
        stats: dict[str, dict[str, object]] = (await gateway.get("/api/admin/media/queue")).json()["data"]
        return stats if stats["watermark"]["completed"] == 1 and stats["sync"]["waiting"] == 1 else None

    stats = await wait_until(counted, within=30, what="a completed watermark job and a waiting sync job")
    assert set(stats) == {"processing", "sync", "watermark"}
    assert stats["watermark"] == {"waiting": 0, "active": 0, "completed": 1, "failed": 0, "type": "redis", "spooled": 0}
    assert stats["sync"] == {"waiting": 1, "active": 0, "completed": 0, "failed": 0, "type": "redis", "spooled": 0}


async def test_state_changes_stream_as_server_sent_events(live_media_gateway: str, media_worker: Worker) -> None:
    async with (
        httpx.AsyncClient(base_url=live_media_gateway, timeout=30, headers=AUTH_HEADERS) as http,
        http.stream("GET", "/api/admin/media/events") as stream,
    ):
        lines = stream.aiter_lines()
        event = ""
        async for line in lines:
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            if event == "ready" and line.startswith("data:"):
                break
        media_id = (await post_upload(http, PHOTO, ownerId="sse")).json()["data"]["mediaId"]
        states: list[str] = []

        async def read_until_ready() -> None:
            async for line in lines:
                if line.startswith("data:"):
                    data = json.loads(line.split(":", 1)[1])
                    if data.get("mediaId") == media_id:
                        states.append(data["state"])
                        if data["state"] == "ready":
                            return

        await asyncio.wait_for(read_until_ready(), timeout=45)
    assert states == ["pending", "processing", "ready"]


async def test_the_list_filters_by_entity_type_and_pages_newest_first(gateway: httpx.AsyncClient) -> None:
    owner = {"ownerId": "pager"}
    avatar = (await post_upload(gateway, PHOTO, entityType="user_avatar", **owner)).json()["data"]["mediaId"]
    first = (await post_upload(gateway, shared("sk_hubble.jpg"), **owner)).json()["data"]["mediaId"]
    second = (await post_upload(gateway, shared("ladybird.jpg"), **owner)).json()["data"]["mediaId"]

    async def listed(**params: str | int) -> tuple[list[str], dict[str, int]]:
        answer = (await gateway.get("/api/admin/media", params={**owner, **params})).json()
        return [m["mediaId"] for m in answer["data"]], answer["meta"]["page"]

    assert await listed(entityType="user_avatar") == ([avatar], {"page": 1, "pageSize": 20, "total": 1})
    assert await listed(pageSize=2) == ([second, first], {"page": 1, "pageSize": 2, "total": 3})
    assert await listed(pageSize=2, page=2) == ([avatar], {"page": 2, "pageSize": 2, "total": 3})
    assert (await gateway.get("/api/admin/media", params={"page": 0})).status_code == 400
