"""Variant URLs: served by the gateway until the media is in S3, then presigned S3 GET URLs (moto server).

moto's server serves a presigned URL without checking its signature, so each URL's SigV4 signature
is also checked independently (tests/media/sigv4.py, from AWS's specification) against the
credentials the service was given: what a real S3 would check."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devsupport.waiting import wait_until
from runtime.queue import Worker
from services.media.settings import MediaSettings
from tests.media.images import shared
from tests.media.sigv4 import check_presigned_get
from tests.media.support import S3Server, with_s3
from tests.media.test_gateway_media import post_upload, ready
from tests.media.test_watermark import variants_by_name

PHOTO = shared("sk_rocket.jpg")


@pytest.fixture
def media_settings(media_settings: MediaSettings, s3_server: S3Server) -> MediaSettings:
    return with_s3(media_settings, s3_server).model_copy(update={"media_presign_expires_s": 600})


async def synced(gateway: httpx.AsyncClient, media_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        media: dict[str, Any] = (await gateway.get(f"/api/admin/media/{media_id}")).json()["data"]
        return media if media["syncedToS3"] else None

    found: dict[str, Any] = await wait_until(check, within=45, what=f"media {media_id} synced to S3")
    return found


async def test_a_ready_media_not_yet_synced_is_served_through_the_gateway(
    gateway: httpx.AsyncClient, media_worker: Worker
) -> None:
    answer = await post_upload(gateway, PHOTO)
    media = await ready(gateway, answer.json()["data"]["mediaId"])
    assert media["syncedToS3"] is False
    assert all(v["url"].startswith("/api/admin/media/") for v in media["variants"])  # type: ignore[attr-defined]


async def test_a_synced_media_lists_presigned_s3_urls_that_serve_the_same_bytes(
    gateway: httpx.AsyncClient, media_worker: Worker, sync_worker: Worker, s3_server: S3Server
) -> None:
    answer = await post_upload(gateway, PHOTO)
    media = await synced(gateway, answer.json()["data"]["mediaId"])
    async with httpx.AsyncClient() as s3:
        for variant in media["variants"]:
            url = urlsplit(variant["url"])
            assert f"{url.scheme}://{url.netloc}" == s3_server.url
            query = parse_qs(url.query)
            assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]  # SigV4: what every S3 accepts
            signed = check_presigned_get(variant["url"], secret_access_key="testing")
            assert (signed.access_key_id, signed.region, signed.expires_s) == ("testing", "us-east-1", 600)
            assert signed.signed_at <= dt.datetime.now(dt.UTC) < signed.signed_at + dt.timedelta(seconds=600)
            direct = await s3.get(variant["url"])
            assert direct.status_code == 200
            local = await gateway.get(f"/api/admin/media/{media['mediaId']}/variants/{variant['name']}")
            assert direct.content == local.content


async def test_a_listed_media_carries_its_presigned_urls_too(
    gateway: httpx.AsyncClient, media_worker: Worker, sync_worker: Worker, s3_server: S3Server
) -> None:
    answer = await post_upload(gateway, PHOTO, ownerId="presign-list")
    media_id = answer.json()["data"]["mediaId"]
    await synced(gateway, media_id)
    listed = (await gateway.get("/api/admin/media", params={"ownerId": "presign-list"})).json()["data"]
    assert [m["mediaId"] for m in listed] == [media_id]
    assert all(v["url"].startswith(s3_server.url) for v in listed[0]["variants"])


async def test_new_watermarked_outputs_go_back_to_the_gateway_until_synced_again(
    gateway: httpx.AsyncClient, media_worker: Worker, watermark_worker: Worker, sync_worker: Worker, s3_server: S3Server
) -> None:
    answer = await post_upload(gateway, PHOTO)
    media_id = answer.json()["data"]["mediaId"]
    await synced(gateway, media_id)
    marked = await gateway.post(f"/api/admin/media/{media_id}/watermark", json={"text": "ACME", "variants": ["thumb"]})
    assert marked.status_code == 202

    async def synced_with_watermark() -> dict[str, Any] | None:
        media: dict[str, Any] = (await gateway.get(f"/api/admin/media/{media_id}")).json()["data"]
        return media if media["syncedToS3"] and "thumb.watermarked" in variants_by_name(media) else None

    media = await wait_until(synced_with_watermark, within=45, what="the watermarked thumb synced")
    url = variants_by_name(media)["thumb.watermarked"]["url"]
    assert url.startswith(s3_server.url)
    check_presigned_get(url, secret_access_key="testing")
    async with httpx.AsyncClient() as s3:
        direct = await s3.get(url)
    assert direct.status_code == 200
    assert direct.headers["content-type"] == "image/webp"
