"""The media service over gRPC: upload → pending → worker → ready; reads, lists, deletes; refusals."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
from PIL import Image
from switchboard.media.v1 import media_pb2

from devsupport.streams import next_message
from devsupport.waiting import wait_until
from runtime.grpc_errors import details_from_rpc_error
from runtime.queue import JobInfo, QueueAdmin, Worker
from services.media.app import MediaApp
from services.media.queues import processing_queue
from services.media.settings import MediaSettings
from tests.media.images import encoded, gradient, png_declaring, shared, webp_chunks
from tests.media.support import MediaClient, stream, upload_messages

PHOTO = shared("sk_rocket.jpg")  # 640×427: quick to process


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call  # type: ignore[misc]
    return error.value


async def test_an_upload_is_stored_and_pending_before_any_worker_runs(media: MediaClient, media_app: MediaApp) -> None:
    answer = await media.upload(PHOTO, filename="../../etc/rocket.jpg", owner_id="u1", entity_type="company_photo")
    m = answer.media
    assert m.state == media_pb2.MEDIA_STATE_PENDING
    assert answer.job_id == m.job_id != ""
    assert (m.content_type, m.size_bytes, m.width, m.height) == ("image/jpeg", len(PHOTO), 640, 427)
    assert m.filename == "rocket.jpg"
    assert await media_app.parts.store.get_bytes(f"originals/{m.media_id}") == PHOTO
    assert (await media.get(m.media_id)).sha256 == m.sha256


async def test_a_worker_turns_an_upload_into_ready_variants(
    media: MediaClient, media_app: MediaApp, media_worker: Worker
) -> None:
    answer = await media.upload(PHOTO, owner_id="u1")
    ready = await media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_READY)
    sizes = {v.name: (v.width, v.height) for v in ready.variants}
    assert sizes == {"thumb": (150, 150), "medium": (640, 427), "large": (640, 427)}
    for v in ready.variants:
        data = await media_app.parts.store.get_bytes(v.storage_key)
        assert data[8:12] == b"WEBP"
        assert len(data) == v.size_bytes


async def test_identical_bytes_from_the_same_owner_return_the_existing_media(media: MediaClient) -> None:
    first = await media.upload(PHOTO, owner_id="u1")
    again = await media.upload(PHOTO, owner_id="u1")
    other_owner = await media.upload(PHOTO, owner_id="u2")
    assert again.media.media_id == first.media.media_id
    assert other_owner.media.media_id != first.media.media_id


@pytest.mark.parametrize(
    "data", [b"<html><body>hi</body></html>" * 100, b"%PDF-1.4 binary", b""], ids=["html", "pdf", "empty"]
)
async def test_bytes_that_are_no_image_are_refused_and_nothing_is_kept(
    media: MediaClient, media_settings: MediaSettings, data: bytes
) -> None:
    error = await refusal(media.upload(data, filename="evil.jpg", content_type="image/jpeg"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error)["reason"] == "UnsupportedMediaType"
    listed = await media.stub.ListMedia(media_pb2.ListMediaRequest(), timeout=10)
    assert listed.total == 0
    assert not list((media_settings.data_dir / "media" / "tmp").iterdir())


async def test_an_upload_over_the_byte_limit_is_refused_as_soon_as_it_passes_and_nothing_is_kept(
    media_app: MediaApp, media: MediaClient, media_settings: MediaSettings
) -> None:
    media_app.library.max_upload_bytes = 200_000
    sent = 0

    async def past_the_limit_then_waiting() -> AsyncIterator[media_pb2.UploadRequest]:
        # Never half-closes and sends nothing more: the refusal can come only from the bytes
        # already sent, and no write of ours can race it (grpc/grpc#36066).
        nonlocal sent
        for message in upload_messages(PHOTO[:32] + bytes(10_000_000), filename="big.jpg"):
            sent += len(message.chunk)
            yield message
            if sent > 200_000:
                break
        await asyncio.Event().wait()

    error = await refusal(media.stub.Upload(past_the_limit_then_waiting(), timeout=3))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(error)["reason"] == "PayloadTooLarge"
    assert (await media.stub.ListMedia(media_pb2.ListMediaRequest(), timeout=10)).total == 0
    assert not list((media_settings.data_dir / "media" / "tmp").iterdir())


async def test_a_declared_size_over_the_limit_is_refused_before_any_byte(media: MediaClient) -> None:
    error = await refusal(media.upload(PHOTO, size_bytes=26 * 1024 * 1024))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_decompression_bomb_is_refused_at_upload_from_its_header_and_nothing_is_kept(
    media: MediaClient, media_settings: MediaSettings
) -> None:
    error = await refusal(media.upload(png_declaring(50_000, 50_000), filename="bomb.png"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "megapixels" in (error.details() or "")
    assert (await media.stub.ListMedia(media_pb2.ListMediaRequest(), timeout=10)).total == 0
    assert not list((media_settings.data_dir / "media" / "tmp").iterdir())


async def test_a_truncated_image_fails_once_and_is_not_retried(
    media: MediaClient, media_worker: Worker, media_settings: MediaSettings
) -> None:
    answer = await media.upload(PHOTO[: len(PHOTO) // 2], owner_id="u1")
    failed = await media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_FAILED)
    assert "decode" in failed.error
    admin = QueueAdmin(processing_queue(media_settings), media_worker.redis)
    job = await wait_until(lambda: _failed_job(admin, answer.job_id), within=20, what="the job recorded as failed")
    assert job.attempts == 1


async def test_unknown_entity_types_and_bad_variants_name_the_field(media: MediaClient) -> None:
    error = await refusal(media.upload(PHOTO, entity_type="spaceship"))
    assert details_from_rpc_error(error)["field"] == "entityType"
    bad = media_pb2.VariantSpec(name="huge", max_width=100_000, max_height=10)
    error = await refusal(media.upload(PHOTO, variants=[bad]))
    assert details_from_rpc_error(error)["field"] == "variants.width"


async def test_custom_variants_named_by_the_upload_are_produced(media: MediaClient, media_worker: Worker) -> None:
    spec = media_pb2.VariantSpec(
        name="square", max_width=64, max_height=64, format=media_pb2.IMAGE_FORMAT_PNG, fit=media_pb2.VARIANT_FIT_COVER
    )
    answer = await media.upload(encoded(gradient((300, 200)), "PNG"), variants=[spec])
    ready = await media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_READY)
    [(name, content_type, size)] = [(v.name, v.content_type, (v.width, v.height)) for v in ready.variants]
    assert (name, content_type, size) == ("square", "image/png", (64, 64))


async def test_delete_is_soft_and_final(media: MediaClient) -> None:
    media_id = (await media.upload(PHOTO)).media.media_id
    await media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=media_id), timeout=10)
    assert (await media.get(media_id)).state == media_pb2.MEDIA_STATE_DELETED
    error = await refusal(media.stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=media_id), timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_reading_an_unknown_or_malformed_id(media: MediaClient) -> None:
    assert (await refusal(media.get("0" * 32))).code() == grpc.StatusCode.NOT_FOUND
    assert (await refusal(media.get("../x"))).code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_owner_id_with_a_newline_is_refused_naming_it(media: MediaClient) -> None:
    error = await refusal(media.upload(PHOTO, owner_id="u1\n"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(error)["field"] == "ownerId"


async def test_list_filters_and_pages_newest_first(media: MediaClient) -> None:
    ids = []
    for i in range(5):
        image = encoded(gradient((40 + i, 30)), "PNG")
        ids.append(
            (await media.upload(image, owner_id="a" if i % 2 == 0 else "b", entity_type="user_avatar")).media.media_id
        )
    page = await media.stub.ListMedia(media_pb2.ListMediaRequest(owner_id="a", page=1, page_size=2), timeout=10)
    assert page.total == 3
    assert [m.media_id for m in page.media] == [ids[4], ids[2]]
    rest = await media.stub.ListMedia(media_pb2.ListMediaRequest(owner_id="a", page=2, page_size=2), timeout=10)
    assert [m.media_id for m in rest.media] == [ids[0]]
    pending = await media.stub.ListMedia(
        media_pb2.ListMediaRequest(state=media_pb2.MEDIA_STATE_PENDING, entity_type="user_avatar"), timeout=10
    )
    assert pending.total == 5


async def test_stats_count_by_state(media: MediaClient) -> None:
    await media.upload(PHOTO)
    stats = await media.stub.GetStats(media_pb2.GetStatsRequest(), timeout=10)
    assert stats.total_count == 1
    assert stats.count_by_state["pending"] == 1
    assert stats.total_bytes == len(PHOTO)


async def test_the_first_message_must_be_metadata(media: MediaClient) -> None:
    error = await refusal(media.stub.Upload(stream([media_pb2.UploadRequest(chunk=PHOTO)]), timeout=10))
    assert details_from_rpc_error(error)["field"] == "metadata"


async def test_processing_waits_are_bounded(media: MediaClient, media_worker: Worker) -> None:
    answers = [await media.upload(encoded(gradient((50 + i, 50)), "PNG"), owner_id="x") for i in range(6)]
    for answer in answers:
        await media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_READY)
    assert await wait_until(lambda: media_worker.jobs_started >= 6, within=10, what="six jobs started")


async def _failed_job(admin: QueueAdmin, job_id: str) -> JobInfo | None:
    job = await admin.job(job_id)
    return job if job.state == "failed" else None


async def test_watchers_see_every_state_change_of_an_upload(media: MediaClient, media_worker: Worker) -> None:
    call = media.stub.WatchMedia(media_pb2.WatchMediaRequest(), timeout=60)
    live = await next_message(call)
    assert live.media_id == ""  # subscribed
    media_id = (await media.upload(PHOTO, owner_id="watch")).media.media_id
    seen: list[int] = []
    while not seen or seen[-1] != media_pb2.MEDIA_STATE_READY:
        event = await next_message(call)
        if event.media_id == media_id:
            seen.append(event.state)
    call.cancel()
    assert seen == [media_pb2.MEDIA_STATE_PENDING, media_pb2.MEDIA_STATE_PROCESSING, media_pb2.MEDIA_STATE_READY]


async def test_a_variant_is_read_back_with_its_etag(media: MediaClient, media_worker: Worker) -> None:
    media_id = (await media.upload(PHOTO)).media.media_id
    await media.wait_state(media_id, media_pb2.MEDIA_STATE_READY)
    parts = [p async for p in media.stub.ReadVariant(media_pb2.ReadVariantRequest(media_id=media_id, name="thumb"))]
    header, data = parts[0].header, b"".join(p.chunk for p in parts[1:])
    assert header.content_type == "image/webp"
    assert header.size_bytes == len(data) > 0
    assert header.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()
    again = [
        p
        async for p in media.stub.ReadVariant(
            media_pb2.ReadVariantRequest(media_id=media_id, name="thumb", if_none_match=header.etag)
        )
    ]
    assert len(again) == 1
    assert again[0].header.not_modified
    error = await refusal(_drain(media.stub.ReadVariant(media_pb2.ReadVariantRequest(media_id=media_id, name="x"))))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def _drain(call: object) -> None:
    async for _ in call:  # type: ignore[attr-defined]
        pass


async def test_an_upload_that_asks_to_keep_its_exif_gets_it_in_its_variants_and_others_get_none(
    media: MediaClient, media_app: MediaApp, media_worker: Worker
) -> None:
    exif = Image.Exif()
    exif[0x010F] = "ACME Cameras"  # Make
    exif[0x0112] = 6  # stored sideways: the variants come out upright
    photo = encoded(gradient((320, 200)), "JPEG", exif=exif.tobytes())
    kept = await media.upload(photo, owner_id="keeps", keep_exif=True)
    stripped = await media.upload(photo, owner_id="strips")
    for answer, keeps in ((kept, True), (stripped, False)):
        ready = await media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_READY)
        large = next(v for v in ready.variants if v.name == "large")
        data = await media_app.parts.store.get_bytes(large.storage_key)
        assert (b"EXIF" in webp_chunks(data)) is keeps
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (200, 320)
            found = dict(image.getexif())
        assert found == ({0x010F: "ACME Cameras", 0x0112: 1} if keeps else {})
