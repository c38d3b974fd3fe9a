"""bench/ami_parser.py: which captures it judges and how a row is judged (no timings)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bench.ami_parser import BUSY_HOUR, FIXTURES, capture_bytes, largest_capture, speedup_rows
from bench.run import validate

FRAME = b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n"


def test_the_largest_capture_is_chosen_by_its_unpacked_size_in_every_folder(tmp_path: Path) -> None:
    (tmp_path / "big_on_disk.ami").write_bytes(FRAME * 50)
    (tmp_path / "control").mkdir()
    packed = tmp_path / "control" / "bigger.control.ami.gz"
    packed.write_bytes(gzip.compress(FRAME * 60))
    (tmp_path / "notes.json").write_bytes(b"x" * 10_000)
    assert packed.stat().st_size < (tmp_path / "big_on_disk.ami").stat().st_size
    assert largest_capture(tmp_path) == packed
    assert capture_bytes(packed) == FRAME * 60


def test_a_folder_without_captures_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no AMI capture"):
        largest_capture(tmp_path)


def test_the_shared_fixtures_hold_a_capture_at_least_as_large_as_the_busy_hour() -> None:
    largest = largest_capture()
    assert len(capture_bytes(largest)) >= len(capture_bytes(BUSY_HOUR))
    assert largest.is_relative_to(FIXTURES)


@pytest.mark.parametrize(("ours", "met"), [(400.0, True), (399.0, False)])
def test_the_speedup_is_judged_against_panoramisk_measured_on_the_same_bytes(ours: float, met: bool) -> None:
    rates = {"ours": ours, "eager": 250.0, "panoramisk": 100.0, "floor": 800.0}
    *information, judged = validate("ami_parser", speedup_rows("x.ami", rates))
    assert all(r.target.startswith(("info", "reference")) for r in information)
    assert [r.value for r in information] == [ours, 100, 2.5, 800]
    assert (judged.value, judged.target, judged.met) == (round(ours / 100, 2), ">= 4", met)
    assert "as the ingest parses" in judged.name
