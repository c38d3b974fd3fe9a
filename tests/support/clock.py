"""A clock the test sets by hand, for code that takes its time as a ``Callable[[], float]``."""

from __future__ import annotations


class FakeClock:
    """Returns ``now`` (epoch seconds) until the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
