"""Watermarks as pure functions: the request's rules and what gets drawn where."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from runtime.errors import InvalidArgument
from services.media.domain.variants import OutputFormat, VariantSpec
from services.media.domain.watermark import Position, WatermarkSpec, apply_watermark
from tests.media.images import encoded

PNG_SPEC = VariantSpec("medium", 400, 400, format=OutputFormat.PNG)
WEBP_SPEC = VariantSpec("medium", 400, 400)


def grey(size: tuple[int, int] = (400, 300), mode: str = "RGB") -> bytes:
    fill: tuple[int, ...] = (128, 128, 128, 255) if mode == "RGBA" else (128, 128, 128)
    return encoded(Image.new(mode, size, fill), "PNG")


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def changed_quadrants(before: bytes, after: bytes) -> set[str]:
    """Which quadrants of the image have any pixel that differs."""
    a, b = decoded(before).convert("RGB"), decoded(after).convert("RGB")
    w, h = a.size
    boxes = {
        "top-left": (0, 0, w // 2, h // 2),
        "top-right": (w // 2, 0, w, h // 2),
        "bottom-left": (0, h // 2, w // 2, h),
        "bottom-right": (w // 2, h // 2, w, h),
    }
    return {name for name, box in boxes.items() if a.crop(box).tobytes() != b.crop(box).tobytes()}


@pytest.mark.parametrize("opacity", [3.0, 0.0, 0.09, 1.01, -0.5, float("nan")])
def test_an_opacity_outside_0_1_to_1_is_refused_naming_the_field(opacity: float) -> None:
    with pytest.raises(InvalidArgument) as refused:
        WatermarkSpec(opacity=opacity, text="ACME")
    assert refused.value.field == "opacity"


def test_an_unknown_position_is_refused_naming_the_field_and_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as refused:
        Position.parse("middle")
    assert refused.value.field == "position"
    assert "bottom-right" in refused.value.message


@pytest.mark.parametrize("scale", [0.05, 1.5])
def test_a_scale_outside_0_1_to_1_is_refused_naming_the_field(scale: float) -> None:
    with pytest.raises(InvalidArgument) as refused:
        WatermarkSpec(scale=scale, text="ACME")
    assert refused.value.field == "scale"


@pytest.mark.parametrize(("text", "overlay"), [("", ""), ("ACME", "a" * 32)])
def test_exactly_one_of_text_and_a_watermark_image_is_required(text: str, overlay: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        WatermarkSpec(text=text, overlay_media_id=overlay)
    assert refused.value.field == "watermarkId"


def test_the_variants_named_must_exist() -> None:
    spec = WatermarkSpec(text="ACME", variants=("large", "poster"))
    with pytest.raises(InvalidArgument) as refused:
        spec.chosen(["thumb", "medium", "large"])
    assert refused.value.field == "variants"
    assert "poster" in refused.value.message


def test_no_variants_named_means_every_variant() -> None:
    assert WatermarkSpec(text="ACME").chosen(["thumb", "medium"]) == ("thumb", "medium")


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_a_corner_watermark_draws_in_that_corner_only(corner: str) -> None:
    base = grey()
    out = apply_watermark(base, PNG_SPEC, WatermarkSpec(Position(corner), opacity=1.0, scale=0.3, text="ACME"))
    assert changed_quadrants(base, out.data) == {corner}


def test_a_centred_watermark_touches_every_quadrant_near_the_middle_only() -> None:
    base = grey()
    out = apply_watermark(base, PNG_SPEC, WatermarkSpec(Position.CENTER, opacity=1.0, scale=0.6, text="ACME"))
    image = decoded(out.data).convert("RGB")
    assert changed_quadrants(base, out.data) == {"top-left", "top-right", "bottom-left", "bottom-right"}
    assert image.getpixel((2, 2)) == image.getpixel((397, 297)) == (128, 128, 128)


def test_a_tiled_watermark_repeats_across_the_image() -> None:
    base = grey((800, 600))
    out = apply_watermark(base, PNG_SPEC, WatermarkSpec(Position.TILE, opacity=1.0, scale=0.1, text="A"))
    assert changed_quadrants(base, out.data) == {"top-left", "top-right", "bottom-left", "bottom-right"}


def test_a_logo_covers_the_scaled_width_with_its_colour_at_full_opacity() -> None:
    logo = encoded(Image.new("RGB", (100, 50), (255, 0, 0)), "PNG")
    mark = WatermarkSpec(Position.CENTER, opacity=1.0, scale=0.5, overlay_media_id="a" * 32)
    out = decoded(apply_watermark(grey(), PNG_SPEC, mark, logo).data).convert("RGB")
    assert out.getpixel((200, 150)) == (255, 0, 0)
    assert out.getpixel((102, 150)) == (255, 0, 0)  # the logo is 200 px wide: x 100-299
    assert out.getpixel((95, 150)) == (128, 128, 128)


def test_opacity_blends_the_logo_with_the_image() -> None:
    logo = encoded(Image.new("RGB", (100, 50), (255, 255, 255)), "PNG")
    mark = WatermarkSpec(Position.CENTER, opacity=0.5, scale=0.5, overlay_media_id="a" * 32)
    out = decoded(apply_watermark(grey(), PNG_SPEC, mark, logo).data).convert("RGB")
    red, green, blue = out.getpixel((200, 150))  # type: ignore[misc]
    assert 185 <= red <= 199  # half-way between 128 and 255
    assert red == green == blue


def test_the_output_keeps_the_variants_size_format_and_transparency() -> None:
    base = encoded(Image.new("RGBA", (300, 200), (0, 0, 255, 0)), "WEBP", lossless=True)
    out = apply_watermark(base, WEBP_SPEC, WatermarkSpec(Position.TOP_LEFT, opacity=1.0, text="ACME"))
    image = decoded(out.data)
    assert (out.content_type, image.format, image.size, (out.width, out.height)) == (
        "image/webp",
        "WEBP",
        (300, 200),
        (300, 200),
    )
    assert image.mode == "RGBA"
    assert image.getpixel((299, 199))[3] == 0  # type: ignore[index]  # away from the mark, still transparent


@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    position=st.sampled_from(list(Position)),
    scale=st.floats(0.1, 1.0),
    opacity=st.floats(0.1, 1.0),
    text=st.text(st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=20).filter(str.isprintable),
)
def test_any_valid_watermark_on_any_image_size_keeps_the_size(
    width: int, height: int, position: Position, scale: float, opacity: float, text: str
) -> None:
    out = apply_watermark(
        grey((width, height)), PNG_SPEC, WatermarkSpec(position, opacity=opacity, scale=scale, text=text)
    )
    assert decoded(out.data).size == (width, height)
