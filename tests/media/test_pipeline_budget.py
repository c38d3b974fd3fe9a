"""The pipeline within its memory budget (services/media/domain/budget.py): a job holds its
source's share only until the source is reduced and freed, and jobs on several threads render
what one at a time would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from services.media.domain.budget import MemoryBudget
from services.media.domain.pipeline import CorruptImage, open_original, process_image
from services.media.domain.sniff import ImageKind
from services.media.domain.variants import DEFAULT_PRESET, DEFAULT_PRESETS
from tests.media.images import encoded, gradient, shared

pytestmark = pytest.mark.timeout(120)
SPECS = DEFAULT_PRESETS[DEFAULT_PRESET]


class RecordingBudget(MemoryBudget):
    """A budget that notes, at each give-back, how much and whether the source was closed by then."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.sources: list[Image.Image] = []
        self.given_back: list[tuple[int, bool]] = []

    def decoder(self, data: bytes, kind: ImageKind) -> Image.Image:
        image = open_original(data, kind)
        self.sources.append(image)
        return image

    def _give_back(self, amount: int) -> None:
        self.given_back.append((amount, _closed(self.sources[-1])))
        super()._give_back(amount)


def _closed(image: Image.Image) -> bool:
    try:
        image.getpixel((0, 0))
    except ValueError:
        return True
    return False


def test_the_sources_share_is_given_back_once_the_source_is_freed_and_the_rest_when_the_job_ends() -> None:
    budget = RecordingBudget(1 << 30)
    photo = encoded(Image.effect_noise((2000, 1200), 40).convert("RGB"), "JPEG")  # reduced to 1600×960
    process_image(photo, SPECS, max_pixels=50_000_000, decoder=budget.decoder, budget=budget)
    decoding = 2000 * 1200 * 4
    assert budget.given_back[0] == (decoding, True)
    assert [closed for _, closed in budget.given_back] == [True, True]
    assert budget.used == 0


def test_a_corrupt_image_gives_its_share_back() -> None:
    budget = MemoryBudget(1 << 30)
    truncated = encoded(gradient((400, 300)), "JPEG")[:600]
    with pytest.raises(CorruptImage):
        process_image(truncated, SPECS, max_pixels=50_000_000, budget=budget)
    assert budget.used == 0


def test_jobs_on_threads_within_a_small_budget_render_the_bytes_of_one_job_at_a_time() -> None:
    originals = [shared(name) for name in ("sk_rocket.jpg", "sk_hubble.jpg", "sk_logo_alpha.png", "arc_alpha.png")]
    alone = [process_image(data, SPECS, max_pixels=50_000_000, budget=MemoryBudget(1 << 30)) for data in originals]
    small = MemoryBudget(8 << 20)  # every one of these is over it: they take turns
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(
            pool.map(lambda data: process_image(data, SPECS, max_pixels=50_000_000, budget=small), originals)
        )
    assert [[v.data for v in r.variants] for r in together] == [[v.data for v in r.variants] for r in alone]
    assert small.used == 0
