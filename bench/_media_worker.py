"""Our side of bench/media_vs_sharp.py: the media worker's rendering, in this process, as the worker runs it.

``python -m bench._media_worker [--jobs N] [--slots S] [--pixel-budget P] [--trim-above-mb M] OUT_DIR REPS
FILE...`` prints one JSON line:
seconds spent processing (imports and start-up excluded), the CPU seconds of that time (every
thread), images, output bytes (first rep), peak RSS in MB.

The worker's shape: ``--jobs`` jobs at once (the media-processing queue's concurrency, 5 by
default), each handing its upload to the worker's :class:`~services.media.rendering.Renderer`,
which renders at most ``--slots`` images at once (default: one per usable core) within its
pixel budget. Each job takes
the next file in order, as a worker takes the next queued upload.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

from services.media.domain.variants import DEFAULT_PRESET, DEFAULT_PRESETS
from services.media.memory import share_one_malloc_arena
from services.media.rendering import DEFAULT_PIXEL_BUDGET, TRIM_ABOVE_MB, Renderer
from services.media.settings import MediaSettings

MAX_PIXELS = 60_000_000
WORKER_JOBS = int(MediaSettings.model_fields["media_processing_concurrency"].default)


def peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across
    ``execve``, so a child of a big parent would report the parent's peak as its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def render_all(out_dir: Path, reps: int, files: list[Path], jobs: int, renderer: Renderer) -> int:
    """Every file ``reps`` times, ``jobs`` at once; the output bytes of the first rep."""
    specs = DEFAULT_PRESETS[DEFAULT_PRESET]
    queue = [(rep, file) for rep in range(reps) for file in files]
    written = 0

    async def job_slot() -> None:
        nonlocal written
        while queue:
            rep, file = queue.pop(0)
            result = await renderer.render(file.read_bytes(), specs, max_pixels=MAX_PIXELS)
            if rep == 0:
                written += sum(len(v.data) for v in result.variants)
                large = next(v for v in result.variants if v.name == "large")
                (out_dir / f"{file.name}.large.webp").write_bytes(large.data)

    await asyncio.gather(*(job_slot() for _ in range(jobs)))
    return written


def main(argv: list[str]) -> None:
    share_one_malloc_arena()  # as the worker process does
    parser = argparse.ArgumentParser(prog="bench._media_worker")
    parser.add_argument("--jobs", type=int, default=WORKER_JOBS)
    parser.add_argument("--slots", type=int, default=None)
    parser.add_argument("--pixel-budget", type=int, default=DEFAULT_PIXEL_BUDGET)
    parser.add_argument("--trim-above-mb", type=float, default=TRIM_ABOVE_MB)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("reps", type=int)
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)
    renderer = Renderer(args.slots, args.pixel_budget, args.trim_above_mb)
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    written = asyncio.run(render_all(args.out_dir, args.reps, args.files, args.jobs, renderer))
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    report = {
        "seconds": seconds,
        "cpuSeconds": cpu,
        "images": len(args.files) * args.reps,
        "bytes": written,
        "peakRssMb": peak_rss_mb(),
        "jobs": args.jobs,
        "slots": renderer.slots,
        "pixelBudget": renderer.pixel_budget,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
