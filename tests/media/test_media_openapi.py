"""The media routes' real answers and SSE events validate against the published OpenAPI schemas
(tests/gateway/test_openapi_contract.py checks the document itself)."""

from __future__ import annotations

import asyncio

import httpx

from devsupport.auth import AUTH_HEADERS
from runtime.queue import Worker
from tests.gateway.conventions import check_against_openapi, check_sse_event, convention_breaks
from tests.gateway.sse import events
from tests.media.test_gateway_media import PHOTO, form, ready

MEDIA = "/api/admin/media"


async def test_media_answers_validate_against_the_published_schemas(
    gateway: httpx.AsyncClient, media_worker: Worker
) -> None:
    spec = (await gateway.get("/openapi.json")).json()
    body, content_type = form(PHOTO)
    uploaded = await gateway.post(f"{MEDIA}/upload-async", content=body, headers={"Content-Type": content_type})
    media_id = uploaded.json()["data"]["mediaId"]
    await ready(gateway, media_id)
    asked = [
        ("get", MEDIA, MEDIA, None),
        ("get", f"{MEDIA}/{media_id}", MEDIA + "/{media_id}", None),
        ("get", f"{MEDIA}/queue", f"{MEDIA}/queue", None),
        ("post", f"{MEDIA}/{media_id}/watermark", MEDIA + "/{media_id}/watermark", {"text": "ACME"}),
        ("delete", f"{MEDIA}/{media_id}/watermark", MEDIA + "/{media_id}/watermark", None),
        ("delete", f"{MEDIA}/{media_id}", MEDIA + "/{media_id}", None),
        ("post", f"{MEDIA}/cleanup", f"{MEDIA}/cleanup", {"dryRun": True}),
        ("get", f"{MEDIA}/{'f' * 32}", MEDIA + "/{media_id}", None),
        ("get", f"{MEDIA}?state=shiny", MEDIA, None),
    ]
    answers = [await gateway.request(method, url, json=json) for method, url, _, json in asked]
    assert [a.status_code for a in answers] == [200, 200, 200, 202, 200, 200, 200, 404, 400]
    checked = [("post", f"{MEDIA}/upload-async", uploaded)]
    checked += [(method, template, answer) for (method, _, template, _), answer in zip(asked, answers, strict=True)]
    for method, template, answer in checked:
        assert convention_breaks(answer.json()) == [], template
        check_against_openapi(spec, method, template, answer.status_code, answer.json())


async def test_media_events_validate_against_the_published_schemas(
    live_media_gateway: str, media_worker: Worker
) -> None:
    async with (
        httpx.AsyncClient(base_url=live_media_gateway, timeout=30, headers=AUTH_HEADERS) as http,
        http.stream("GET", f"{MEDIA}/events") as response,
    ):
        spec = (await http.get("/openapi.json")).json()
        stream = events(response)
        first = await asyncio.wait_for(anext(stream), 20)
        assert first.event == "ready"
        check_sse_event(spec, f"{MEDIA}/events", first.event, first.json())
        body, content_type = form(PHOTO)
        await http.post(f"{MEDIA}/upload-async", content=body, headers={"Content-Type": content_type})
        event = await asyncio.wait_for(anext(stream), 30)
    assert event.event == "media"
    check_sse_event(spec, f"{MEDIA}/events", event.event, event.json())
