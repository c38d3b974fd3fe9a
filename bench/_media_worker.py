"""Our side of bench/media_vs_sharp.py: the media worker's pipeline on every file, in this process.

``python -m bench._media_worker OUT_DIR REPS FILE...`` prints one JSON line: seconds spent
processing (imports and start-up excluded), the CPU seconds of that time (every thread),
images, output bytes (first rep), peak RSS in MB.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from services.media.domain.pipeline import process_image
from services.media.domain.variants import DEFAULT_PRESET, DEFAULT_PRESETS
from services.media.memory import share_one_malloc_arena

MAX_PIXELS = 60_000_000


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


def main(argv: list[str]) -> None:
    share_one_malloc_arena()  # as the worker process does
    out_dir, reps, files = Path(argv[0]), int(argv[1]), [Path(f) for f in argv[2:]]
    specs = DEFAULT_PRESETS[DEFAULT_PRESET]
    written = 0
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    for rep in range(reps):
        for file in files:
            result = process_image(file.read_bytes(), specs, max_pixels=MAX_PIXELS)
            if rep == 0:
                written += sum(len(v.data) for v in result.variants)
                large = next(v for v in result.variants if v.name == "large")
                (out_dir / f"{file.name}.large.webp").write_bytes(large.data)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    peak_mb = peak_rss_mb()
    print(
        json.dumps(
            {"seconds": seconds, "cpuSeconds": cpu, "images": len(files) * reps, "bytes": written, "peakRssMb": peak_mb}
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
