"""Our media pipeline against sharp (libvips), side by side on the same images, interleaved.

``python -m bench.media_vs_sharp [--images DIR] [--processes N] [--reps R]`` runs, R times in
turn, N processes of our worker's pipeline (:mod:`bench._media_worker`) and N node processes of
sharp as its users run it (:file:`bench/_media_sharp.js`) over every image of DIR (3 variants
each, WebP q85), then prints one JSON line last::

    {"imgPerSec", "sharpImgPerSec", "ratio", "bytesRatio", "ssimLargeMin", "peakRssMb", "sharpPeakRssMb",
     "ssimLargeMinImage", "refSsimMin", "sharpRefSsimMin", "refSsimGapMax",
     "cpuMsPerImage", "sharpCpuMsPerImage", "cpuRatio"}

Rates count processing time only (each process reports its own; the slowest of the N bounds the
round). sharp runs its three variants at once on libvips threads, so in one process it uses
more than one core: ``cpuMsPerImage`` / ``sharpCpuMsPerImage`` are the CPU time (every thread) per
image and ``cpuRatio`` sharp's over ours, the per-core comparison (less disturbed by other load
than wall time, though not immune). ``bytesRatio`` is our output bytes over sharp's;
``ssimLargeMin`` the lowest SSIM (luma, 7×7 window) between our ``large`` and sharp's over every
image (``ssimLargeMinImage`` names it).
Luma is taken of what a viewer sees: an image with alpha is composited over white and over black
and the lower SSIM counts (the colour under fully transparent pixels is invisible, and the two
pipelines leave different colours there).

Two encodes at WebP q85 agree with each other only as far as the encoder's choices do: Pillow's
libwebp given sharp's own resized pixels writes sharp's file byte for byte, yet pixels resized by
two correct Lanczos-3 implementations (SSIM ~0.999 before encoding) come out of the encoder at
SSIM ~0.97-0.99 to each other. So quality is also measured against a reference: the source
decoded in full, oriented, in sRGB, resized with Lanczos-3 and not encoded. ``refSsimMin`` and
``sharpRefSsimMin`` are each side's lowest SSIM to it; ``refSsimGapMax`` the most by which ours
is below sharp's on one image (<= 0: never worse than sharp). sharp (npm, pinned) is installed
on first use under ``$XDG_CACHE_HOME/switchboard-bench/sharp`` (outside git) with npm.

``run()`` (what ``make bench`` calls) adds the 50-megapixel memory figure: one JPEG of that size,
made from a test photo, processed by one worker process whose peak RSS is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

from devsupport.procs import child_env

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_IMAGES = REPO_ROOT.parent / "shared" / "media-images"
SHARP_VERSION = "0.34.5"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def sharp_dir() -> Path:
    """sharp installed with npm in a cache directory outside the repository (once)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "switchboard-bench" / "sharp"
    marker = cache / "node_modules" / "sharp" / "package.json"
    if not marker.exists() or json.loads(marker.read_text())["version"] != SHARP_VERSION:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache), f"sharp@{SHARP_VERSION}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return cache


def images_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _run_parallel(commands: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    processes = [
        subprocess.Popen(list(c), stdout=subprocess.PIPE, env=child_env(), cwd=REPO_ROOT, text=True) for c in commands
    ]
    reports = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{commands[0][:3]} exited with {process.returncode}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def visible_lumas(image: Image.Image) -> list[np.ndarray]:
    """The luma a viewer sees: one plane, or for an image with alpha one over white, one over black."""
    if image.mode not in ("RGBA", "LA") and "transparency" not in image.info:
        return [np.asarray(image.convert("L"), dtype=np.float64)]
    rgba = image.convert("RGBA")
    planes = []
    for background in ((255, 255, 255), (0, 0, 0)):
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        planes.append(np.asarray(flat.convert("L"), dtype=np.float64))
    return planes


def _luma_of(path: Path) -> list[np.ndarray]:
    with Image.open(path) as image:
        return visible_lumas(image)


def visible_ssim(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The lowest SSIM over the backgrounds both were composited on (one plane each when opaque)."""
    if len(a) != len(b):  # one side lost its alpha: compare what each shows over white
        a, b = a[:1], b[:1]
    return min(ssim(x, y) for x, y in zip(a, b, strict=True))


def reference_large(source: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """The ideal ``large``: full decode, EXIF orientation, sRGB, Lanczos-3 to ``size``, no encoding."""
    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened)
        icc = opened.info.get("icc_profile")
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        if icc:
            with contextlib.suppress(ImageCms.PyCMSError, OSError, ValueError):
                source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                image = ImageCms.profileToProfile(image, source_profile, _SRGB, outputMode=image.mode) or image
        if image.mode == "RGBA":  # resample premultiplied: invisible colour must not bleed
            resized = image.convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
        else:
            resized = image.resize(size, Image.Resampling.LANCZOS)
        return visible_lumas(resized)


_SRGB = ImageCms.createProfile("sRGB")


def _box_mean(a: np.ndarray, k: int = 7) -> np.ndarray:
    c = np.cumsum(np.cumsum(np.pad(a, ((1, 0), (1, 0))), axis=0), axis=1)
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return s / (k * k)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luma images (7×7 uniform window), compared over their common area."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = _box_mean(a), _box_mean(b)
    va = _box_mean(a * a) - ma * ma
    vb = _box_mean(b * b) - mb * mb
    cov = _box_mean(a * b) - ma * mb
    index = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(index.mean())


def compare(images: Sequence[Path], processes: int = 1, reps: int = 1) -> dict[str, Any]:
    node_dir = sharp_dir()
    files = [str(p) for p in images]
    ours_dir = Path(tempfile.mkdtemp(prefix="media-bench-ours-"))
    sharp_out = Path(tempfile.mkdtemp(prefix="media-bench-sharp-"))
    ours_cmd = [sys.executable, "-m", "bench._media_worker", str(ours_dir), "1", *files]
    sharp_cmd = ["node", str(BENCH_DIR / "_media_sharp.js"), str(node_dir), str(sharp_out), "1", *files]
    ours_s = sharp_s = 0.0
    ours_cpu = sharp_cpu = 0.0
    ours_rss = sharp_rss = 0.0
    ours_bytes = sharp_bytes = 0
    for _ in range(reps):  # interleaved: each round runs both, so load drifts hit both alike
        ours = _run_parallel([ours_cmd] * processes)
        theirs = _run_parallel([sharp_cmd] * processes)
        ours_s += max(r["seconds"] for r in ours)
        ours_cpu += sum(r["cpuSeconds"] for r in ours)
        sharp_cpu += sum(r["cpuSeconds"] for r in theirs)
        sharp_s += max(r["seconds"] for r in theirs)
        ours_rss = max(ours_rss, *(r["peakRssMb"] for r in ours))
        sharp_rss = max(sharp_rss, *(r["peakRssMb"] for r in theirs))
        ours_bytes, sharp_bytes = ours[0]["bytes"], theirs[0]["bytes"]
    count = len(files) * processes * reps
    quality = [_quality(p, ours_dir / f"{p.name}.large.webp", sharp_out / f"{p.name}.large.webp") for p in images]
    worst = min(range(len(images)), key=lambda i: quality[i][0])
    ours_rate, sharp_rate = count / ours_s, count / sharp_s
    return {
        "imgPerSec": round(ours_rate, 2),
        "sharpImgPerSec": round(sharp_rate, 2),
        "ratio": round(ours_rate / sharp_rate, 3),
        "bytesRatio": round(ours_bytes / sharp_bytes, 4),
        "ssimLargeMin": round(quality[worst][0], 4),
        "peakRssMb": round(ours_rss, 1),
        "sharpPeakRssMb": round(sharp_rss, 1),
        "ssimLargeMinImage": images[worst].name,
        "refSsimMin": round(min(q[1] for q in quality), 4),
        "sharpRefSsimMin": round(min(q[2] for q in quality), 4),
        "refSsimGapMax": round(max(q[2] - q[1] for q in quality), 4),
        "cpuMsPerImage": round(ours_cpu / count * 1000, 1),
        "sharpCpuMsPerImage": round(sharp_cpu / count * 1000, 1),
        "cpuRatio": round(sharp_cpu / ours_cpu, 3),
    }


def _quality(source: Path, ours: Path, theirs: Path) -> tuple[float, float, float]:
    """SSIM of our large to sharp's, and of each to the reference."""
    ours_luma, sharp_luma = _luma_of(ours), _luma_of(theirs)
    with Image.open(theirs) as image:
        size = image.size
    reference = reference_large(source, size)
    return (
        visible_ssim(ours_luma, sharp_luma),
        visible_ssim(ours_luma, reference),
        visible_ssim(sharp_luma, reference),
    )


def fifty_megapixel_peak_rss(images_dir: Path) -> float:
    """Peak RSS (MB) of one worker process rendering the variants of a 50-megapixel JPEG."""
    work = Path(tempfile.mkdtemp(prefix="media-bench-50mp-"))
    source = work / "fifty_mp.jpg"
    with Image.open(images_dir / "kleiber.jpg") as photo:
        photo.convert("RGB").resize((9400, 5320), Image.Resampling.BILINEAR).save(source, "JPEG", quality=90)
    (report,) = _run_parallel([[sys.executable, "-m", "bench._media_worker", str(work), "1", str(source)]])
    return float(report["peakRssMb"])


def run() -> list[dict[str, Any]]:
    images = images_in(DEFAULT_IMAGES)
    one = compare(images, processes=1, reps=1)
    two = compare(images, processes=2, reps=1)
    rss_50mp = fifty_megapixel_peak_rss(DEFAULT_IMAGES)
    noisy = " (one run; noisy on a shared machine)"
    return [
        _row("media pipeline vs sharp, images/s ratio, 1 process", one["ratio"], "x" + noisy, ">= 1.3"),
        _row("  media pipeline images/s, 1 process", one["imgPerSec"], "img/s", "info"),
        _row("  anchor: sharp images/s, 1 process", one["sharpImgPerSec"], "img/s", "anchor"),
        _row("media pipeline vs sharp, images/s ratio, 2 processes", two["ratio"], "x" + noisy, ">= 1.3"),
        _row("  media vs sharp, CPU per image ratio (sharp's / ours), 1 process", one["cpuRatio"], "x", "info"),
        _row("  media CPU per image, 1 process", one["cpuMsPerImage"], "ms", "info"),
        _row("  anchor: sharp CPU per image, 1 process", one["sharpCpuMsPerImage"], "ms", "anchor"),
        _row("media output bytes / sharp's", one["bytesRatio"], "x", "<= 1.02"),
        _row("media large variant SSIM vs sharp, minimum", one["ssimLargeMin"], "SSIM", ">= 0.99"),
        _row("  media large SSIM vs unencoded reference, minimum", one["refSsimMin"], "SSIM", "info"),
        _row("  anchor: sharp large SSIM vs unencoded reference, minimum", one["sharpRefSsimMin"], "SSIM", "anchor"),
        _row("  media below sharp in SSIM vs reference, worst image", one["refSsimGapMax"], "SSIM", "info"),
        _row("media worker peak RSS, shared images", one["peakRssMb"], "MB", "<= 300"),
        _row("  anchor: sharp peak RSS, shared images", one["sharpPeakRssMb"], "MB", "anchor"),
        _row("media worker peak RSS, 50-megapixel JPEG", rss_50mp, "MB", "<= 400"),
    ]


def _row(name: str, value: float, unit: str, target: str) -> dict[str, Any]:
    met = True
    if target.startswith(">= "):
        met = value >= float(target[3:])
    elif target.startswith("<= "):
        met = value <= float(target[3:])
    return {"name": name, "value": value, "unit": unit, "target": target, "met": met}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(compare(images_in(args.images), processes=args.processes, reps=args.reps)))


if __name__ == "__main__":
    main()
