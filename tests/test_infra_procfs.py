"""bench/_procfs.py: the benches' memory rows read a process's /proc status."""

from __future__ import annotations

import os

import pytest

from bench._procfs import status_kib


@pytest.mark.timeout(10)
def test_resident_now_is_at_most_the_peak_so_far() -> None:
    now, peak = status_kib(os.getpid(), "VmRSS"), status_kib("self", "VmHWM")
    assert 1024 < now <= peak


@pytest.mark.timeout(10)
def test_a_field_the_status_lacks_is_an_error_naming_it() -> None:
    with pytest.raises(RuntimeError, match="no VmNothing for process self"):
        status_kib("self", "VmNothing")
