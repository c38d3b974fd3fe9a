"""The image pipeline on real photos and on images made to exercise one property each."""

from __future__ import annotations

import functools
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat

from runtime.errors import PayloadTooLarge, UnsupportedMediaType
from services.media.domain.pipeline import (
    CorruptImage,
    ProcessedImage,
    process_image,
)
from services.media.domain.sniff import ImageKind
from services.media.domain.variants import DEFAULT_PRESET, Fit, OutputFormat, VariantSpec, parse_presets
from tests.media.images import encoded, gradient, manifest, png_declaring, shared, webp_chunks

DEFAULTS = parse_presets("")[DEFAULT_PRESET]
MAX_PIXELS = 50_000_000
METADATA_CHUNKS = {b"EXIF", b"XMP ", b"ICCP"}


def run(data: bytes, specs: tuple[VariantSpec, ...] = DEFAULTS, *, keep_metadata: bool = False) -> ProcessedImage:
    return process_image(data, specs, max_pixels=MAX_PIXELS, keep_metadata=keep_metadata)


@functools.cache
def processed_photo(name: str) -> ProcessedImage:
    """A shared photo through the default variants, processed once per run: the tests that each
    look at one side of a photo's output share its processing (deterministic, and seconds of CPU
    for the larger photos)."""
    return run(shared(name))


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def variant(result: ProcessedImage, name: str) -> Image.Image:
    (found,) = [v for v in result.variants if v.name == name]
    return opened(found.data)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0-255, after bringing b to a's size."""
    b = b.convert(a.mode).resize(a.size, Image.Resampling.BILINEAR)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / len(a.getbands())


def reference(data: bytes, size: tuple[int, int]) -> Image.Image:
    """What an upright, plainly resized original looks like (Pillow's own EXIF transpose)."""
    image = ImageOps.exif_transpose(opened(data)).convert("RGB")
    return image.resize(size, Image.Resampling.BILINEAR)


@pytest.mark.parametrize("name", sorted(manifest()))
def test_every_shared_photo_gives_three_clean_webp_variants(name: str) -> None:
    entry = manifest()[name]
    result = processed_photo(name)
    assert (result.width, result.height) == tuple(entry.get("display_size", entry["size"]))
    assert [v.name for v in result.variants] == ["thumb", "medium", "large"]
    for v in result.variants:
        assert v.content_type == "image/webp"
        assert not METADATA_CHUNKS & set(webp_chunks(v.data)), f"{v.name} carries metadata"
        image = opened(v.data)
        assert image.format == "WEBP"
        assert image.size == (v.width, v.height)
        assert v.width <= 1600
        assert v.height <= 1600
    assert (result.variants[0].width, result.variants[0].height) == (150, 150)


@pytest.mark.parametrize("name", ["exif_o3_gps_picos.jpg", "exif_o6_gps_dragonfly.jpg", "exif_o7_aitzgorri.jpg"])
def test_exif_rotated_photos_come_out_upright(name: str) -> None:
    data = shared(name)
    large = variant(processed_photo(name), "large").convert("RGB")
    upright = reference(data, large.size)
    stored = opened(data).convert("RGB")
    assert mean_difference(large, upright) < 4
    if stored.size == upright.size:  # orientation 3: same shape, so compare the unrotated pixels too
        assert mean_difference(large, stored) > 4 * mean_difference(large, upright)


def test_keep_metadata_keeps_exif_with_the_orientation_reset() -> None:
    result = run(shared("exif_o6_gps_dragonfly.jpg"), keep_metadata=True)
    large = variant(result, "large")
    assert b"EXIF" in webp_chunks(result.variants[2].data)
    assert large.getexif()[0x0112] == 1
    assert large.size == (1600, 1200)


def test_a_display_p3_photo_is_converted_to_srgb_and_its_profile_dropped() -> None:
    data = shared("p3_garden.jpg")
    original = opened(data)
    icc = original.info["icc_profile"]
    in_srgb = ImageCms.profileToProfile(
        original, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    assert in_srgb is not None
    large = variant(processed_photo("p3_garden.jpg"), "large").convert("RGB")
    assert "icc_profile" not in large.info
    assert mean_difference(large, in_srgb) < 3
    assert mean_difference(large, original.convert("RGB")) > mean_difference(large, in_srgb) + 1


@pytest.mark.parametrize("name", ["alpha_yellowflower.png", "arc_alpha.png", "gulp_alpha.png"])
def test_transparency_survives(name: str) -> None:
    data = shared(name)
    medium = variant(processed_photo(name), "medium")
    assert medium.mode == "RGBA"
    source_alpha = opened(data).getchannel("A").resize(medium.size, Image.Resampling.BILINEAR)
    assert mean_difference(medium.getchannel("A"), source_alpha) < 3


def test_transparent_pixels_do_not_bleed_colour_into_edges() -> None:
    image = Image.new("RGBA", (400, 400), (255, 0, 0, 0))  # invisible red
    image.paste((0, 0, 255, 255), (100, 100, 300, 300))  # an opaque blue square
    thumb = variant(run(encoded(image, "PNG"), (VariantSpec("t", 100, 100, quality=100),)), "t")
    red, _, blue, alpha = thumb.getpixel((25, 50))  # type: ignore[misc]
    assert alpha > 64
    assert red < 40 < blue


def test_cmyk_jpeg_comes_out_as_rgb_with_the_right_colours() -> None:
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red in CMYK
    medium = variant(run(encoded(cmyk, "JPEG", quality=95)), "medium").convert("RGB")
    red, green, blue = medium.getpixel((32, 32))  # type: ignore[misc]
    assert red > 200
    assert green < 60
    assert blue < 60


def test_greyscale_16_bit_png_is_scaled_not_clipped() -> None:
    wide = Image.new("I;16", (64, 64))
    wide.putdata([32768] * (64 * 64))  # half intensity
    medium = variant(run(encoded(wide, "PNG")), "medium").convert("L")
    assert 120 <= ImageStat.Stat(medium).mean[0] <= 136


def test_palette_png_with_a_transparent_index_keeps_its_transparency() -> None:
    image = Image.new("P", (64, 64), 1)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    image.paste(0, (0, 0, 32, 64))
    image.info["transparency"] = 0
    medium = variant(run(encoded(image, "PNG", transparency=0)), "medium")
    assert medium.mode == "RGBA"
    assert medium.getpixel((8, 32))[3] == 0  # type: ignore[index]
    assert medium.getpixel((56, 32))[1] > 150  # type: ignore[index]


def test_greyscale_jpeg_stays_grey() -> None:
    medium = variant(run(encoded(gradient((200, 100), "L"), "JPEG")), "medium").convert("RGB")
    r, g, b = medium.getpixel((100, 50))  # type: ignore[misc]
    assert abs(r - g) <= 2
    assert abs(g - b) <= 2


def test_an_animated_gif_yields_its_first_frame() -> None:
    frames = [Image.new("RGB", (60, 40), colour) for colour in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = run(buffer.getvalue())
    assert result.kind is ImageKind.GIF
    r, g, b = variant(result, "medium").convert("RGB").getpixel((30, 20))  # type: ignore[misc]
    assert r > 200
    assert g < 50
    assert b < 50


def test_an_animated_webp_yields_its_first_frame() -> None:
    frames = [Image.new("RGBA", (60, 40), colour) for colour in ((250, 0, 0, 255), (0, 250, 0, 255), (0, 0, 250, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    with Image.open(io.BytesIO(buffer.getvalue())) as check:
        assert getattr(check, "n_frames", 1) == 3  # really animated
    result = run(buffer.getvalue())
    assert result.kind is ImageKind.WEBP
    r, g, b = variant(result, "medium").convert("RGB").getpixel((30, 20))  # type: ignore[misc]
    assert r > 200
    assert g < 50
    assert b < 50


def test_custom_variants_in_other_formats() -> None:
    specs = (
        VariantSpec("square", 64, 64, Fit.COVER, OutputFormat.JPEG, 90),
        VariantSpec("lossless", 100, 100, Fit.FIT, OutputFormat.PNG),
    )
    result = run(shared("sk_logo_alpha.png"), specs)
    square, lossless = (opened(v.data) for v in result.variants)
    assert (square.format, square.size, square.mode) == ("JPEG", (64, 64), "RGB")
    assert (lossless.format, lossless.size, lossless.mode) == ("PNG", (100, 100), "RGBA")


def test_variants_of_equal_pixels_share_one_encoding() -> None:
    result = processed_photo("sk_rocket.jpg")  # 640×427: medium and large are both the original size
    assert result.variants[1].data == result.variants[2].data


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(PayloadTooLarge) as refused:
        run(png_declaring(50_000, 50_000))
    assert refused.value.details["width"] == 50_000


def test_the_pixel_limit_is_configurable() -> None:
    with pytest.raises(PayloadTooLarge):
        process_image(encoded(gradient((100, 100)), "PNG"), DEFAULTS, max_pixels=9_999)


def test_a_truncated_jpeg_is_a_corrupt_image() -> None:
    data = shared("sk_rocket.jpg")
    with pytest.raises(CorruptImage):
        run(data[: len(data) // 2])


def test_html_is_refused_before_any_decoder_runs() -> None:
    with pytest.raises(UnsupportedMediaType):
        run(b"<html><script>alert(1)</script></html>")


SMALL_IMAGES = [
    encoded(gradient((24, 16)), fmt, **params)
    for fmt, params in (("JPEG", {}), ("PNG", {}), ("GIF", {}), ("WEBP", {}), ("JPEG", {"progressive": True}))
]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SMALL_IMAGES), st.integers(0, 400), st.binary(min_size=1, max_size=24), st.booleans())
def test_mutated_images_are_processed_or_refused_never_crash(
    data: bytes, offset: int, junk: bytes, truncate: bool
) -> None:
    mutated = data[:offset] + junk + (b"" if truncate else data[offset + len(junk) :])
    try:
        result = process_image(mutated, DEFAULTS, max_pixels=1_000_000)
    except (UnsupportedMediaType, PayloadTooLarge, CorruptImage):
        return
    assert all(v.data for v in result.variants)
