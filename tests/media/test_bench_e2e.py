"""bench/media_e2e_bench.py: its quantiles, its memory reading, and a short run through real processes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bench.media_e2e_bench as e2e


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=200), st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]))
def test_percentile_is_numpys_linear_interpolation(values: list[float], q: float) -> None:
    assert e2e.percentile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_peak_rss_is_read_from_the_process_status() -> None:
    assert 10 < e2e.peak_rss_mb(os.getpid()) < 100_000


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_short_run_takes_every_upload_to_ready_and_reports_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(e2e, "UPLOADS", 4)
    async with e2e.suite(tmp_path) as suite:
        rows = await e2e.end_to_end(suite)
    counted, rate, p50, p99 = rows
    assert (counted["value"], counted["met"]) == (4, True)
    assert rate["value"] > 0
    assert 0 < p50["value"] <= p99["value"]
