"""A refused upload reads as its refusal, never as INTERNAL, however the refusal races the client's writes.

The media service refuses bytes that are no image after the first chunk, while the client (the
gateway, or any gRPC caller) is still writing the rest. grpc.aio's client turns a write that
reaches its core after the server's status into ``INTERNAL: Internal error from Core`` instead
of that status (grpc/grpc#36066), so the server reads the rest of a refused stream to its end
(bounded) before answering. Each test repeats the upload: the race is one of timing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import httpx
import pytest
from switchboard.media.v1 import media_pb2

from runtime.grpc_errors import details_from_rpc_error
from services.media.app import MediaApp
from tests.media.support import MediaClient, stream, upload_messages
from tests.media.test_gateway_media import post_upload

pytestmark = pytest.mark.timeout(180)
REPEATS = 30
NOT_AN_IMAGE = os.urandom(1_900_000)  # under the gateway fixture's 2 MB limit: about 30 chunks of 64 KiB


async def test_a_multi_chunk_non_image_through_the_gateway_is_415_every_time(gateway: httpx.AsyncClient) -> None:
    answers = [await post_upload(gateway, NOT_AN_IMAGE) for _ in range(REPEATS)]
    assert [a.status_code for a in answers] == [415] * REPEATS, [a.text[:200] for a in answers if a.status_code != 415]
    assert all(a.json()["error"]["details"]["field"] == "file" for a in answers)


async def test_a_multi_chunk_non_image_over_grpc_is_refused_as_unsupported_every_time(media: MediaClient) -> None:
    outcomes = []
    for _ in range(REPEATS):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await media.stub.Upload(stream(upload_messages(NOT_AN_IMAGE, filename="x.pdf")), timeout=30)
        outcomes.append((error.value.code(), details_from_rpc_error(error.value).get("reason")))
    assert outcomes == [(grpc.StatusCode.INVALID_ARGUMENT, "UnsupportedMediaType")] * REPEATS


async def test_an_upload_over_the_byte_limit_over_grpc_is_resource_exhausted_every_time(
    media_app: MediaApp, media: MediaClient
) -> None:
    media_app.library.max_upload_bytes = 200_000
    outcomes = []
    for _ in range(REPEATS):
        # Refused at the fourth 64 KiB chunk; the rest is within what a refusal drains (the limit again).
        messages = upload_messages(b"\xff\xd8\xff" + bytes(380_000), filename="big.jpg")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await media.stub.Upload(stream(messages), timeout=30)
        outcomes.append((error.value.code(), details_from_rpc_error(error.value).get("reason")))
    assert outcomes == [(grpc.StatusCode.RESOURCE_EXHAUSTED, "PayloadTooLarge")] * REPEATS


async def test_a_client_that_stalls_after_a_refused_chunk_still_gets_the_refusal_before_its_deadline(
    media: MediaClient,
) -> None:
    async def stalling() -> AsyncIterator[media_pb2.UploadRequest]:
        for message in upload_messages(NOT_AN_IMAGE[:65536], filename="x.pdf"):
            yield message
        await asyncio.Event().wait()  # never half-closes

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await media.stub.Upload(stalling(), timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error.value)["reason"] == "UnsupportedMediaType"
