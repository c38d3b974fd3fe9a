"""The drill shows the ingest takeover beside its bound, lease + poll."""

from __future__ import annotations

from scripts.drill_takeover import INGEST_LEASE_MS, INGEST_POLL_SECONDS, Takeover, takeover_line, takeover_summary


def test_the_summary_holds_both_takeover_figures_beside_lease_plus_poll() -> None:
    summary = takeover_summary(Takeover(lease_taken_seconds=1.84, first_write_seconds=2.52))
    assert summary == {
        "lease_taken_seconds": 1.84,
        "first_write_seconds": 2.52,
        "bound_seconds": INGEST_LEASE_MS / 1000 + INGEST_POLL_SECONDS,
    }


def test_a_drill_without_a_takeover_has_no_takeover_figures() -> None:
    assert takeover_summary(None) is None


def test_the_printed_line_puts_the_measurements_beside_the_bound() -> None:
    summary = takeover_summary(Takeover(lease_taken_seconds=1.84, first_write_seconds=2.52))
    assert summary is not None
    assert takeover_line(summary) == (
        "ingest takeover: lease taken 1.84 s, first write 2.52 s after the kill; bound lease + poll = 2 + 1 = 3 s"
    )
