"""Watermarks through the real path: gateway → Watermark RPC → media-watermark queue → worker → store."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from PIL import Image
from switchboard.media.v1 import media_pb2

from devsupport.waiting import wait_until
from runtime.queue import Worker
from services.media.settings import MediaSettings
from tests.media.images import encoded, shared
from tests.media.support import MediaClient
from tests.media.test_gateway_media import post_upload, ready

PHOTO = shared("sk_rocket.jpg")


async def uploaded_ready(gateway: httpx.AsyncClient, data: bytes = PHOTO, **fields: str) -> dict[str, Any]:
    answer = await post_upload(gateway, data, **fields)
    assert answer.status_code == 202, answer.text
    return await ready(gateway, answer.json()["data"]["mediaId"])


def variants_by_name(media: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in media["variants"]}


async def watermarked(
    gateway: httpx.AsyncClient, media_id: str, names: set[str], *, not_etags: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The media once each of ``names`` has a watermarked output (whose ETag is none of ``not_etags``)."""

    async def check() -> dict[str, Any] | None:
        media: dict[str, Any] = (await gateway.get(f"/api/admin/media/{media_id}")).json()["data"]
        found = variants_by_name(media)
        done = all(f"{n}.watermarked" in found for n in names)
        if not done:
            return None
        etags = {(await gateway.get(found[f"{n}.watermarked"]["url"])).headers["etag"] for n in names}
        return media if not etags & not_etags else None

    media: dict[str, Any] = await wait_until(check, within=45, what=f"{sorted(names)} watermarked")
    return media


async def test_a_text_watermark_is_queued_and_drawn_beside_the_untouched_variants(
    gateway: httpx.AsyncClient, media_worker: Worker, watermark_worker: Worker
) -> None:
    media = await uploaded_ready(gateway)
    plain_before = {n: (await gateway.get(v["url"])).content for n, v in variants_by_name(media).items()}
    answer = await gateway.post(
        f"/api/admin/media/{media['mediaId']}/watermark",
        json={"text": "© ACME", "position": "bottom-right", "opacity": 0.8, "scale": 0.3},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["data"]["jobId"].startswith("watermark:")
    after = variants_by_name(await watermarked(gateway, media["mediaId"], {"thumb", "medium", "large"}))
    for name, plain in plain_before.items():
        assert (await gateway.get(after[name]["url"])).content == plain
        marked = after[f"{name}.watermarked"]
        assert (marked["width"], marked["height"]) == (after[name]["width"], after[name]["height"])
        served = await gateway.get(marked["url"])
        assert served.headers["content-type"] == "image/webp"
        assert served.content != plain


async def test_only_the_variants_named_are_watermarked(
    gateway: httpx.AsyncClient, media_worker: Worker, watermark_worker: Worker
) -> None:
    media = await uploaded_ready(gateway)
    answer = await gateway.post(
        f"/api/admin/media/{media['mediaId']}/watermark", json={"text": "ACME", "variants": ["large"]}
    )
    assert answer.status_code == 202
    after = await watermarked(gateway, media["mediaId"], {"large"})
    assert sorted(variants_by_name(after)) == ["large", "large.watermarked", "medium", "thumb"]


async def test_an_uploaded_logo_watermarks_and_a_second_watermark_replaces_the_first(
    gateway: httpx.AsyncClient, media_worker: Worker, watermark_worker: Worker
) -> None:
    logo = await uploaded_ready(gateway, encoded(Image.new("RGBA", (200, 80), (255, 0, 0, 255)), "PNG"))
    media = await uploaded_ready(gateway)
    first = await gateway.post(
        f"/api/admin/media/{media['mediaId']}/watermark",
        json={"watermarkId": logo["mediaId"], "position": "tile", "opacity": 1.0, "scale": 0.2, "variants": ["thumb"]},
    )
    assert first.status_code == 202, first.text
    once = variants_by_name(await watermarked(gateway, media["mediaId"], {"thumb"}))
    first_etag = (await gateway.get(once["thumb.watermarked"]["url"])).headers["etag"]
    second = await gateway.post(
        f"/api/admin/media/{media['mediaId']}/watermark",
        json={"text": "v2", "position": "center", "variants": ["thumb"]},
    )
    assert second.status_code == 202
    twice = variants_by_name(await watermarked(gateway, media["mediaId"], {"thumb"}, not_etags=frozenset({first_etag})))
    assert [n for n in twice if n.endswith(".watermarked")] == ["thumb.watermarked"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "ACME", "opacity": 3}, "opacity"),
        ({"text": "ACME", "position": "middle"}, "position"),
        ({"text": "ACME", "scale": 0}, "scale"),
        ({"text": "ACME", "variants": ["poster"]}, "variants"),
        ({}, "watermarkId"),
        ({"watermarkId": "f" * 32}, "watermarkId"),
    ],
)
async def test_a_bad_watermark_request_is_400_naming_the_field(
    gateway: httpx.AsyncClient, media_worker: Worker, body: dict[str, Any], field: str
) -> None:
    media = await uploaded_ready(gateway)
    answer = await gateway.post(f"/api/admin/media/{media['mediaId']}/watermark", json=body)
    assert answer.status_code == 400, answer.text
    assert field in answer.text
    assert answer.json()["success"] is False


async def test_a_media_not_yet_ready_cannot_be_watermarked(gateway: httpx.AsyncClient) -> None:
    answer = await post_upload(gateway, PHOTO)  # no worker: it stays pending
    media_id = answer.json()["data"]["mediaId"]
    refused = await gateway.post(f"/api/admin/media/{media_id}/watermark", json={"text": "ACME"})
    assert refused.json()["error"]["code"] == "FAILED_PRECONDITION"
    assert "pending" in refused.json()["error"]["message"]


async def test_the_rpc_refuses_an_opacity_over_one_as_invalid_argument_naming_it(media: MediaClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await media.stub.Watermark(media_pb2.WatermarkRequest(media_id="a" * 32, text="ACME", opacity=3.0), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "opacity" in (refused.value.details() or "")


async def test_a_watermark_is_removed_and_the_plain_variants_stay(
    gateway: httpx.AsyncClient, media_worker: Worker, watermark_worker: Worker, media_settings: MediaSettings
) -> None:
    media = await uploaded_ready(gateway)
    media_id = media["mediaId"]
    await gateway.post(f"/api/admin/media/{media_id}/watermark", json={"text": "ACME"})
    marked = variants_by_name(await watermarked(gateway, media_id, {"thumb", "medium", "large"}))
    unknown = await gateway.delete(f"/api/admin/media/{media_id}/watermark", params={"variants": ["poster"]})
    assert unknown.status_code == 400
    assert "variants" in unknown.text

    only_thumb = await gateway.delete(f"/api/admin/media/{media_id}/watermark", params={"variants": ["thumb"]})
    assert only_thumb.json()["data"]["removed"] == ["thumb.watermarked"]
    rest = await gateway.delete(f"/api/admin/media/{media_id}/watermark")
    assert rest.json()["data"]["removed"] == ["large.watermarked", "medium.watermarked"]

    after = (await gateway.get(f"/api/admin/media/{media_id}")).json()["data"]
    assert sorted(variants_by_name(after)) == ["large", "medium", "thumb"]
    assert (await gateway.get(marked["thumb.watermarked"]["url"])).status_code == 404
    store = media_settings.data_dir / "media" / "objects"
    assert not [p for p in store.rglob("*") if ".watermarked" in p.name]
    for name in ("thumb", "medium", "large"):
        assert (await gateway.get(f"/api/admin/media/{media_id}/variants/{name}")).status_code == 200
