"""Checks while an upload streams in: refusals come with the first bytes that show them."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import PayloadTooLarge, UnsupportedMediaType
from services.media.domain.sniff import ImageKind
from services.media.domain.upload_check import UploadCheck
from tests.media.images import encoded, gradient, png_declaring

PNG = encoded(gradient((30, 20)), "PNG")


def check(**limits: int) -> UploadCheck:
    return UploadCheck(max_bytes=limits.get("max_bytes", 10_000_000), max_pixels=limits.get("max_pixels", 1_000_000))


def test_a_good_upload_in_small_chunks_gives_its_kind_size_and_sha256() -> None:
    upload = check()
    for i in range(0, len(PNG), 7):
        upload.feed(PNG[i : i + 7])
    assert upload.finish() == hashlib.sha256(PNG).hexdigest()
    assert (upload.kind, upload.dimensions, upload.size) == (ImageKind.PNG, (30, 20), len(PNG))


def test_html_is_refused_with_the_first_chunk() -> None:
    with pytest.raises(UnsupportedMediaType):
        check().feed(b"<!DOCTYPE html><html><head><title>x</title></head>")


def test_a_bomb_is_refused_as_soon_as_its_header_arrived() -> None:
    upload = check()
    bomb = png_declaring(50_000, 50_000)
    with pytest.raises(PayloadTooLarge):
        upload.feed(bomb[:40])


def test_the_byte_limit_is_enforced_on_the_chunk_that_passes_it() -> None:
    upload = check(max_bytes=100)
    upload.feed(PNG[:60])
    with pytest.raises(PayloadTooLarge):
        upload.feed(PNG[60:120])


def test_a_declared_size_over_the_limit_is_refused_before_any_byte() -> None:
    with pytest.raises(PayloadTooLarge):
        UploadCheck(max_bytes=100, max_pixels=100, declared_size=101)


def test_an_empty_upload_is_no_image() -> None:
    with pytest.raises(UnsupportedMediaType, match="empty"):
        check().finish()


def test_a_tiny_image_shorter_than_the_probe_is_still_judged() -> None:
    upload = check()
    upload.feed(b"GIF89a\x01\x00\x01\x00")
    upload.finish()
    assert upload.kind is ImageKind.GIF


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_chunks_are_accepted_or_refused_never_crash(chunks: list[bytes]) -> None:
    upload = check(max_bytes=300)
    try:
        for chunk in chunks:
            upload.feed(chunk)
        upload.finish()
    except (UnsupportedMediaType, PayloadTooLarge):
        pass
