"""The simple-API WebP encoder writes Pillow's file byte for byte, and the pipeline uses it only
where it can."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from services.media.domain import webp_encoder
from services.media.domain.encoding import encode_variant
from services.media.domain.variants import OutputFormat, VariantSpec


def photo_like(mode: str, size: tuple[int, int] = (301, 203)) -> Image.Image:
    """Smooth gradients with noise (an encoder has real choices to make), alpha feathered and
    partly fully transparent for RGBA."""
    rng = np.random.default_rng(7)
    height, width = size[1], size[0]
    y, x = np.mgrid[0:height, 0:width]
    bands = [(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))]
    pixels = np.stack(bands, axis=-1) + rng.integers(0, 40, (height, width, 3))
    if mode == "RGBA":
        alpha = np.clip((x - width // 3) * 4, 0, 255)
        pixels = np.concatenate([pixels, alpha[..., None]], axis=-1)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode)


def pillow_webp(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=quality, method=webp_encoder.SIMPLE_API_METHOD)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("quality", [50, 85])
def test_the_file_is_pillows_byte_for_byte(mode: str, quality: int) -> None:
    image = photo_like(mode)
    encoded = webp_encoder.encode_lossy(image, quality)
    assert encoded is not None
    assert encoded == pillow_webp(image, quality)


def test_rgb_padding_bytes_do_not_reach_the_file() -> None:
    # Pillow's own resampling leaves RGB's fourth byte 0: read as alpha it would make the picture
    # transparent, so only the three colour bytes may be passed.
    image = photo_like("RGB").resize((150, 100), Image.Resampling.LANCZOS)
    encoded = webp_encoder.encode_lossy(image, 85)
    assert encoded == pillow_webp(image, 85)
    with Image.open(io.BytesIO(encoded or b"")) as decoded:
        assert decoded.mode == "RGB"


def test_other_modes_are_left_to_pillow() -> None:
    assert webp_encoder.encode_lossy(photo_like("RGB").convert("L"), 85) is None


def test_a_variant_keeping_metadata_is_saved_by_pillow_with_it() -> None:
    exif = Image.Exif()
    exif[0x010F] = "maker"  # Make
    spec = VariantSpec("large", 400, 400, format=OutputFormat.WEBP)
    rendered = encode_variant(photo_like("RGB"), spec, exif.tobytes(), None)
    with Image.open(io.BytesIO(rendered.data)) as decoded:
        assert decoded.getexif().get(0x010F) == "maker"
    plain = encode_variant(photo_like("RGB"), spec, None, None)
    assert plain.data == pillow_webp(photo_like("RGB"), spec.quality)


def test_a_plain_webp_variant_goes_through_the_simple_api(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    encode = webp_encoder.encode_lossy

    def spy(image: Image.Image, quality: int) -> bytes | None:
        calls.append(image.mode)
        return encode(image, quality)

    monkeypatch.setattr(webp_encoder, "encode_lossy", spy)
    spec = VariantSpec("large", 400, 400, format=OutputFormat.WEBP)
    encode_variant(photo_like("RGBA"), spec, None, None)
    assert calls == ["RGBA"]
    encode_variant(photo_like("RGB"), spec, None, b"<x:xmpmeta/>")
    assert calls == ["RGBA"]  # metadata to keep: Pillow's encoder, which writes it
