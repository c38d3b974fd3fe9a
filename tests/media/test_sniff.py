"""Sniffing: the format and declared size from the bytes, never from a name or a Content-Type."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from runtime.errors import UnsupportedMediaType
from services.media.domain.sniff import ImageKind, sniff
from tests.media.images import encoded, gradient, manifest, png_declaring, shared


@pytest.mark.parametrize("name", sorted(manifest()))
def test_every_shared_photo_is_recognised_with_its_stored_size(name: str) -> None:
    entry = manifest()[name]
    result = sniff(shared(name))
    assert result.kind is ImageKind[entry["format"]]
    assert (result.width, result.height) == tuple(entry["size"])


@pytest.mark.parametrize(
    ("fmt", "params", "kind"),
    [
        ("JPEG", {}, ImageKind.JPEG),
        ("JPEG", {"progressive": True}, ImageKind.JPEG),
        ("PNG", {}, ImageKind.PNG),
        ("GIF", {}, ImageKind.GIF),
        ("WEBP", {"quality": 80}, ImageKind.WEBP),
        ("WEBP", {"lossless": True}, ImageKind.WEBP),
        ("WEBP", {"exif": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"}, ImageKind.WEBP),
    ],
)
def test_each_format_and_container_variant_gives_its_size(fmt: str, params: dict[str, object], kind: ImageKind) -> None:
    result = sniff(encoded(gradient((37, 23)), fmt, **params))
    assert (result.kind, result.width, result.height) == (kind, 37, 23)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!doctype html><html><body>hi</body></html>",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
        bytes(range(256)) * 4,
    ],
    ids=["empty", "html", "svg", "pdf", "random"],
)
def test_bytes_that_are_no_supported_image_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        sniff(data)
    assert refused.value.field == "file"


def test_a_tiff_named_like_a_jpeg_is_still_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        sniff(encoded(gradient(), "TIFF"))


def test_a_bomb_png_declares_its_huge_size_in_a_few_bytes() -> None:
    result = sniff(png_declaring(50_000, 50_000))
    assert result.pixels == 2_500_000_000


def test_a_header_cut_short_gives_the_kind_without_a_size() -> None:
    result = sniff(encoded(gradient(), "JPEG")[:40])
    assert result.kind is ImageKind.JPEG
    assert result.pixels is None


def _image_bytes() -> st.SearchStrategy[bytes]:
    small = [encoded(gradient((9, 7)), fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP")]
    return st.sampled_from(small)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_sniffed_or_refused_never_crash(data: bytes) -> None:
    try:
        result = sniff(data)
    except UnsupportedMediaType:
        return
    assert result.width is None or result.width >= 0


@given(_image_bytes(), st.integers(min_value=0, max_value=200), st.binary(min_size=1, max_size=16))
def test_images_with_corrupted_headers_are_sniffed_or_refused_never_crash(
    data: bytes, offset: int, junk: bytes
) -> None:
    mutated = data[:offset] + junk + data[offset + len(junk) :]
    with contextlib.suppress(UnsupportedMediaType):
        sniff(mutated)


def test_a_gif_keeps_its_logical_screen_size() -> None:
    image = Image.new("P", (30, 20))
    assert sniff(encoded(image, "GIF")).pixels == 600
