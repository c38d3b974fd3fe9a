"""An upload is one trace: gateway POST → media Upload → processing job → S3 sync job → S3 calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devsupport.tracing import ancestry, global_tracing
from devsupport.waiting import wait_until
from runtime.queue import Worker
from services.media.settings import MediaSettings
from tests.media.images import shared
from tests.media.support import S3Server, with_s3
from tests.media.test_gateway_media import post_streamed_over_limit, post_upload

UPLOAD_ROUTE = "POST /api/admin/media/upload-async"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    with global_tracing(spans):
        yield spans


@pytest.fixture
def media_settings(media_settings: MediaSettings, s3_server: S3Server, exporter: InMemorySpanExporter) -> MediaSettings:
    """S3 on, and tracing on before the service, its workers and the gateway are built."""
    return with_s3(media_settings, s3_server)


async def test_an_upload_is_one_trace_from_the_gateway_to_the_s3_writes(
    gateway: httpx.AsyncClient, media_worker: Worker, sync_worker: Worker, exporter: InMemorySpanExporter
) -> None:
    answer = await post_upload(gateway, shared("sk_rocket.jpg"))
    assert answer.status_code == 202
    media_id = answer.json()["data"]["mediaId"]

    async def synced() -> dict[str, Any] | None:
        media: dict[str, Any] = (await gateway.get(f"/api/admin/media/{media_id}")).json()["data"]
        return media if media["syncedToS3"] else None

    await wait_until(synced, within=45, what="the upload processed and synced to S3")
    await wait_until(
        lambda: any(s.name == "queue.run sync_media" for s in exporter.get_finished_spans()),
        within=10,
        what="the sync job's span ended",
    )
    spans = list(exporter.get_finished_spans())
    (request,) = [s for s in spans if s.name == UPLOAD_ROUTE and s.kind is SpanKind.SERVER]
    trace = [s for s in spans if s.context.trace_id == request.context.trace_id]
    puts = [s for s in trace if s.name == "S3.put_object"]
    assert len(puts) == 4  # the original and three variants
    assert all(s.kind is SpanKind.CLIENT for s in puts)
    assert {s.attributes["aws.s3.key"] for s in puts if s.attributes} >= {f"originals/{media_id}"}
    chain = ancestry(puts[0], spans)
    assert chain[:3] == ["S3.put_object", "queue.run sync_media", "queue.enqueue sync_media"]
    assert chain[3] == "queue.run process_media"
    assert "queue.enqueue process_media" in chain
    assert "/switchboard.media.v1.MediaService/Upload" in chain
    assert chain[-1] == UPLOAD_ROUTE
    steps = {s.name for s in trace}
    assert {"media.render", "media.store_variants"} <= steps
    (render,) = [s for s in trace if s.name == "media.render"]
    assert ancestry(render, spans)[1] == "queue.run process_media"


async def test_with_client_tracing_on_a_file_passing_the_limit_is_still_413_while_streaming(
    gateway: httpx.AsyncClient,
) -> None:
    answer = await post_streamed_over_limit(gateway)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "RESOURCE_EXHAUSTED"


async def test_with_client_tracing_on_bytes_that_are_no_image_are_still_415(gateway: httpx.AsyncClient) -> None:
    answer = await post_upload(gateway, b"<html><body>not an image</body></html>" * 10)
    assert answer.status_code == 415
    assert answer.json()["error"]["details"]["field"] == "file"
