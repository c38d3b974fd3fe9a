"""Variant geometry and presets: fit, cover, never upscale, configuration from JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import InvalidArgument
from services.media.domain.variants import DEFAULT_PRESET, Fit, VariantSpec, parse_presets, plan_variants

DEFAULTS = parse_presets("")[DEFAULT_PRESET]


def sizes(width: int, height: int) -> dict[str, tuple[int, int]]:
    return {g.spec.name: g.size for g in plan_variants(DEFAULTS, width, height)}


def test_default_preset_of_a_landscape_photo() -> None:
    assert sizes(4000, 3000) == {"thumb": (150, 150), "medium": (800, 600), "large": (1600, 1200)}


def test_default_preset_of_a_portrait_photo() -> None:
    assert sizes(2560, 3837) == {"thumb": (150, 150), "medium": (534, 800), "large": (1068, 1600)}


def test_a_small_image_is_never_upscaled() -> None:
    assert sizes(640, 427) == {"thumb": (150, 150), "medium": (640, 427), "large": (640, 427)}


def test_cover_of_an_image_smaller_than_the_box_takes_a_centred_square() -> None:
    (thumb,) = plan_variants([VariantSpec("thumb", 150, 150, Fit.COVER)], 100, 80)
    assert thumb.size == (80, 80)
    assert thumb.crop == (10, 0, 90, 80)


def test_variants_are_planned_largest_first() -> None:
    assert [g.spec.name for g in plan_variants(DEFAULTS, 4000, 3000)] == ["large", "medium", "thumb"]


@given(st.integers(1, 20_000), st.integers(1, 20_000))
def test_every_variant_fits_its_box_and_keeps_the_aspect_ratio(width: int, height: int) -> None:
    for g in plan_variants(DEFAULTS, width, height):
        w, h = g.size
        assert 1 <= w <= min(g.spec.width, width if g.spec.fit is Fit.FIT else max(width, g.spec.width))
        assert w <= g.spec.width
        assert h <= g.spec.height
        assert g.resized[0] <= width
        assert g.resized[1] <= height
        if g.spec.fit is Fit.COVER and width >= g.spec.width and height >= g.spec.height:
            assert g.size == (g.spec.width, g.spec.height)


def test_presets_from_json_override_and_extend_the_built_in_ones() -> None:
    presets = parse_presets('{"banner": [{"name": "wide", "width": 1200, "height": 300, "fit": "cover"}]}')
    assert presets["banner"] == (VariantSpec("wide", 1200, 300, Fit.COVER),)
    assert presets[DEFAULT_PRESET] == DEFAULTS


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1]", "JSON object"),
        ('{"x": [{"name": "a", "width": 0, "height": 5}]}', "width"),
        ('{"x": [{"name": "a", "width": 5, "height": 5}, {"name": "a", "width": 9, "height": 9}]}', "repeat"),
        ('{"x": []}', "at least one"),
        ("{", "not JSON"),
    ],
)
def test_bad_preset_configuration_is_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_presets(text)


def test_a_variant_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        VariantSpec("thumb\n", 10, 10)
    assert caught.value.field == "variants.name"


def test_a_variant_spec_with_a_bad_name_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as refused:
        VariantSpec("Big Thumb!", 10, 10)
    assert refused.value.field == "variants.name"
