"""The worker's renderer: one render per core, within a pixel budget, first asked first started,
and the same variants as the pipeline called directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from PIL import Image

from services.media.domain.pipeline import CorruptImage, process_image
from services.media.domain.variants import DEFAULT_PRESET, parse_presets
from services.media.memory import release_free_memory, resident_mb
from services.media.rendering import Renderer, usable_cores
from tests.media.images import encoded, gradient, shared

DEFAULTS = parse_presets("")[DEFAULT_PRESET]
MAX_PIXELS = 50_000_000


class Turns:
    """Turns taken on a renderer by tasks that hold them until released."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.started: list[str] = []
        self._release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def ask(self, name: str, pixels: int) -> None:
        release = self._release[name] = asyncio.Event()

        async def hold() -> None:
            turn: AbstractAsyncContextManager[None] = self.renderer.turn(pixels)
            async with turn:
                self.started.append(name)
                await release.wait()

        self.tasks[name] = asyncio.create_task(hold())

    async def release(self, name: str) -> None:
        self._release[name].set()
        await self.tasks[name]

    async def settle(self) -> None:
        for _ in range(20):  # every waiter that can go gets the loop's turns to go
            await asyncio.sleep(0)


@pytest.fixture
async def turns() -> AsyncIterator[Turns]:
    held = Turns(Renderer(slots=2, pixel_budget=10_000_000))
    yield held
    for task in held.tasks.values():
        task.cancel()
    await asyncio.gather(*held.tasks.values(), return_exceptions=True)


async def test_no_more_renders_run_than_slots_however_small(turns: Turns) -> None:
    for name in ("a", "b", "c"):
        turns.ask(name, 1_000)
    await turns.settle()
    assert turns.started == ["a", "b"]
    await turns.release("a")
    await turns.settle()
    assert turns.started == ["a", "b", "c"]


async def test_a_render_waits_while_the_pixels_running_would_pass_the_budget(turns: Turns) -> None:
    turns.ask("six", 6_000_000)
    turns.ask("five", 5_000_000)
    await turns.settle()
    assert turns.started == ["six"]
    assert (turns.renderer.running, turns.renderer.pixels_running) == (1, 6_000_000)
    await turns.release("six")
    await turns.settle()
    assert turns.started == ["six", "five"]


async def test_a_render_over_the_budget_runs_alone_and_later_ones_wait_behind_it(turns: Turns) -> None:
    turns.ask("small", 1_000_000)
    turns.ask("huge", 40_000_000)
    turns.ask("tiny", 1_000)  # would fit beside "small", but "huge" asked first
    await turns.settle()
    assert turns.started == ["small"]
    await turns.release("small")
    await turns.settle()
    assert turns.started == ["small", "huge"]
    await turns.release("huge")
    await turns.settle()
    assert turns.started == ["small", "huge", "tiny"]


async def test_a_render_cancelled_while_waiting_leaves_the_line(turns: Turns) -> None:
    turns.ask("a", 6_000_000)
    turns.ask("b", 6_000_000)
    turns.ask("c", 1_000_000)
    await turns.settle()
    turns.tasks["b"].cancel()
    await turns.settle()
    assert turns.started == ["a", "c"]
    assert turns.tasks["b"].cancelled()


async def test_renders_at_once_give_the_variants_of_the_pipeline_called_directly() -> None:
    uploads = [shared("sk_rocket.jpg"), shared("sk_logo_alpha.png"), shared("sk_hubble.jpg")]
    uploads.append(encoded(gradient((2400, 1800)), "JPEG", quality=90))
    renderer = Renderer(slots=2, pixel_budget=100_000_000)
    rendered = await asyncio.gather(*(renderer.render(u, DEFAULTS, max_pixels=MAX_PIXELS) for u in uploads))
    assert (renderer.running, renderer.pixels_running) == (0, 0)
    for upload, result in zip(uploads, rendered, strict=True):
        assert result == process_image(upload, DEFAULTS, max_pixels=MAX_PIXELS)


async def test_a_render_that_fails_gives_its_turn_back() -> None:
    renderer = Renderer(slots=1)
    with pytest.raises(CorruptImage):
        await renderer.render(shared("sk_rocket.jpg")[:2000], DEFAULTS, max_pixels=MAX_PIXELS)
    assert (renderer.running, renderer.pixels_running) == (0, 0)
    small = encoded(Image.new("RGB", (40, 30), (9, 9, 9)), "PNG")
    assert len((await renderer.render(small, DEFAULTS, max_pixels=MAX_PIXELS)).variants) == 3


def test_the_cores_are_the_affinity_lowered_by_a_cgroup_quota_rounded_up(tmp_path: Path) -> None:
    affinity = usable_cores(tmp_path / "absent")
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == affinity
    cpu_max.write_text("150000 100000\n")
    assert usable_cores(cpu_max) == min(affinity, 2)
    cpu_max.write_text("20000 100000\n")
    assert usable_cores(cpu_max) == 1


def test_slots_and_budget_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="slots"):
        Renderer(slots=0)
    with pytest.raises(ValueError, match="budget"):
        Renderer(pixel_budget=0)


def test_free_memory_is_given_back_only_above_the_threshold() -> None:
    assert resident_mb() > 1
    assert release_free_memory(above_mb=1e9) is False
    assert release_free_memory(above_mb=1.0) is True  # glibc: malloc_trim is there
