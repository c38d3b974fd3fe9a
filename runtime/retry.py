"""Retry policy as data.

The delay before retry number ``n`` (``n`` = 1 for the first retry) is::

    raw   = min(cap, base * multiplier ** (n - 1))
    delay = raw * (1 - jitter * U)          with U ~ uniform[0, 1)

so ``jitter=0`` gives plain capped exponential backoff and ``jitter=1`` gives "full jitter"
(any value in ``(0, raw]``). A server that names its own delay (Telegram's ``retry_after``,
HTTP ``Retry-After``) wins over the formula: ``delay_for(n, server_delay=s)`` returns
``min(max(s, 0), server_delay_cap)``. ``next_delay(made)`` is the same delay for the attempt
after ``made`` attempts, or None when the policy allows no more.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    """Total tries including the first; ``0`` means retry forever (reconnect loops)."""
    base: float = 0.5
    cap: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    server_delay_cap: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("attempts must be >= 0")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")
        if self.multiplier < 1.0:
            raise ValueError("multiplier must be >= 1")

    def delay_for(self, retry_number: int, *, server_delay: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        if server_delay is not None:
            return min(max(server_delay, 0.0), self.server_delay_cap)
        exponent = max(retry_number - 1, 0)
        try:
            # Float power: one step whatever the exponent (an int power of a huge retry number
            # would build a huge integer first).
            raw = min(self.cap, self.base * float(self.multiplier) ** exponent)
        except OverflowError:  # the growth passed the largest float, so any cap
            raw = self.cap if self.base else 0.0
        return raw * (1.0 - self.jitter * self.rng.random())

    def allows(self, attempts_made: int) -> bool:
        """Whether another attempt may follow ``attempts_made`` attempts."""
        return self.attempts == 0 or attempts_made < self.attempts

    def next_delay(self, attempts_made: int, *, server_delay: float | None = None) -> float | None:
        """Seconds before the attempt after ``attempts_made`` ones, or None when none is left."""
        if not self.allows(attempts_made):
            return None
        return self.delay_for(attempts_made, server_delay=server_delay)

    def delays(self) -> Iterator[float]:
        """The successive waits between attempts (endless when ``attempts == 0``)."""
        n = 1
        while self.allows(n):
            yield self.delay_for(n)
            n += 1
