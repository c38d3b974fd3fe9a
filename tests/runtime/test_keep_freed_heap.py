"""runtime.process.keep_freed_heap: memory freed after a burst is reused by the next one, not faulted in again."""

from __future__ import annotations

import subprocess
import sys

from devsupport.procs import child_env

# Two waves of 32 one-MiB blocks (written, so every page is touched); prints the minor page
# faults of the second wave. Its own process: the setting lasts for the life of a process.
WAVES = """
import resource, sys
from runtime.process import keep_freed_heap
if sys.argv[1] == "keep" and not keep_freed_heap():
    sys.exit("mallopt refused")
def wave():
    blocks = [b"x" * (1 << 20) for _ in range(32)]
    del blocks
wave()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
wave()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
WAVE_PAGES = 32 * 256


def second_wave_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", WAVES, mode], env=child_env(), capture_output=True, text=True, timeout=30, check=True
    )
    return int(done.stdout)


def test_a_second_burst_reuses_the_heap_the_first_one_freed() -> None:
    assert second_wave_faults("keep") < WAVE_PAGES // 10


def test_by_default_the_second_burst_faults_its_pages_in_again() -> None:
    # What keep_freed_heap changes (glibc maps each 1 MiB block on its own and unmaps it when freed).
    assert second_wave_faults("default") > WAVE_PAGES // 2
