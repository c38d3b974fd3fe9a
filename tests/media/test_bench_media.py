"""The pieces of bench/media_vs_sharp.py that decide its figures: SSIM and our worker's report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from bench.media_vs_sharp import REPO_ROOT, ssim, visible_lumas, visible_ssim
from devsupport.procs import child_env
from tests.media.images import SHARED_IMAGES


def test_ssim_is_one_for_identical_images_and_lower_for_noise() -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(64, 80)).astype(np.float64)
    noisy = np.clip(image + rng.normal(0, 25, size=image.shape), 0, 255)
    assert ssim(image, image) == 1.0
    assert 0 < ssim(image, noisy) < 0.99


def test_the_colour_under_fully_transparent_pixels_does_not_count() -> None:
    shown = Image.new("RGBA", (40, 30), (200, 40, 40, 255))
    under_red, under_blue = shown.copy(), shown.copy()
    for image, colour in ((under_red, (255, 0, 0, 0)), (under_blue, (0, 0, 255, 0))):
        image.paste(Image.new("RGBA", (20, 30), colour), (20, 0))
    assert visible_ssim(visible_lumas(under_red), visible_lumas(under_blue)) == 1.0
    assert ssim(*(np.asarray(i.convert("L"), dtype=np.float64) for i in (under_red, under_blue))) < 0.9
    half_visible = shown.copy()
    half_visible.paste(Image.new("RGBA", (20, 30), (0, 0, 255, 128)), (20, 0))
    assert visible_ssim(visible_lumas(under_red), visible_lumas(half_visible)) < 0.99


def test_the_worker_reports_time_bytes_and_peak_rss_and_keeps_its_large_variant(tmp_path: Path) -> None:
    photo = SHARED_IMAGES / "sk_rocket.jpg"
    out = subprocess.run(
        [sys.executable, "-m", "bench._media_worker", str(tmp_path), "1", str(photo)],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
        cwd=REPO_ROOT,
        timeout=50,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["images"] == 1
    assert report["bytes"] > 0
    assert report["peakRssMb"] > 10
    assert 0 < report["cpuSeconds"] < 50
    assert (tmp_path / "sk_rocket.jpg.large.webp").read_bytes()[8:12] == b"WEBP"
