"""A process's memory as Linux's ``/proc/<pid>/status`` tells it: the benches' RSS rows."""

from __future__ import annotations

from pathlib import Path

__all__ = ["status_kib"]


def status_kib(pid: int | str, field: str) -> int:
    """``field`` of ``/proc/<pid>/status`` in KiB: ``VmRSS`` (resident now) or ``VmHWM`` (resident
    at most, so far). ``VmHWM``, not ``ru_maxrss``, for a peak: Linux carries ``ru_maxrss`` across
    ``execve``, so a child of a big parent would report the parent's peak as its own."""
    prefix = f"{field}:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(prefix):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")
