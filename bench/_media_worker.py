"""Our side of bench/media_vs_sharp.py: the media worker's pipeline on every file, in this process.

``python -m bench._media_worker OUT_DIR REPS FILE...`` prints one JSON line: seconds spent
processing (imports and start-up excluded), the CPU seconds of that time (every thread),
images, output bytes (first rep), peak RSS in MB. The files are processed as the worker processes
jobs: :data:`JOB_THREADS` at once (``MEDIA_BENCH_JOBS`` overrides it, to compare).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench._procfs import status_kib
from services.media.domain.pipeline import ProcessedImage, process_image
from services.media.domain.variants import DEFAULT_PRESET, DEFAULT_PRESETS
from services.media.memory import tune_media_process

MAX_PIXELS = 60_000_000
JOB_THREADS = 5
"""Jobs at once, as the worker runs them (``MEDIA_PROCESSING_CONCURRENCY``, 5): each on its own
thread, sharing the pipeline's encoder threads and its budget for decoded sources."""


def peak_rss_mb() -> float:
    """This process's peak RSS (:func:`bench._procfs.status_kib`'s ``VmHWM``), in MB."""
    return status_kib("self", "VmHWM") / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> None:
    tune_media_process()  # as the worker process does
    out_dir, reps, files = Path(argv[0]), int(argv[1]), [Path(f) for f in argv[2:]]
    specs = DEFAULT_PRESETS[DEFAULT_PRESET]
    jobs = int(os.environ.get("MEDIA_BENCH_JOBS", JOB_THREADS))
    written = 0

    def render(file: Path) -> ProcessedImage:
        return process_image(file.read_bytes(), specs, max_pixels=MAX_PIXELS)

    started = time.perf_counter()
    cpu_started = cpu_seconds()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="media-job") as pool:
        for rep in range(reps):
            for file, result in zip(files, pool.map(render, files), strict=True):
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
