"""The ingest takeover in the drill: the measurement, its bound, and the line that shows both.

The drill runs ami_ingest with a short lease so a takeover fits in its run. The figures are
printed, not judged: they are wall-clock times of processes sharing the machine's cores (see
README, Failover drill, for why no test asserts them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

INGEST_LEASE_MS = 2000
INGEST_POLL_SECONDS = 1.0
TAKEOVER_BOUND_SECONDS = INGEST_LEASE_MS / 1000 + INGEST_POLL_SECONDS
"""The dead leader's lease runs out within ``lease`` of its last renewal; the standby tries every ``poll``."""


@dataclass(frozen=True)
class Takeover:
    """How long the ingest standby took after the leader's kill, as the drill's polls saw it."""

    lease_taken_seconds: float
    """Until the standby held the lease: what ``lease + poll`` bounds (the dead leader's lease
    runs out within ``lease`` of its last renewal; the standby tries every ``poll``)."""
    first_write_seconds: float
    """Until the status service had its first write under the new lease (AMI login and resync
    on top): when reads show live state again."""


def takeover_line(takeover: dict[str, Any]) -> str:
    """The measurement beside its bound, for a person reading the drill's output."""
    return (
        f"ingest takeover: lease taken {takeover['lease_taken_seconds']} s, first write "
        f"{takeover['first_write_seconds']} s after the kill; bound lease + poll = "
        f"{INGEST_LEASE_MS / 1000:g} + {INGEST_POLL_SECONDS:g} = {takeover['bound_seconds']:g} s"
    )


def takeover_summary(takeover: Takeover | None) -> dict[str, Any] | None:
    """The drill summary's ``ingest_takeover``: both figures and the bound, side by side."""
    return None if takeover is None else {**asdict(takeover), "bound_seconds": TAKEOVER_BOUND_SECONDS}
