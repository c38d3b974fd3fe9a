"""The interface every channel adapter implements."""

from __future__ import annotations

from typing import Protocol

from services.notify.domain.outcomes import Outcome
from services.notify.records import Notification


class Sender(Protocol):
    async def send(self, notification: Notification) -> Outcome:
        """Hand ``notification`` to the provider once and say what came of it."""
        ...

    async def close(self) -> None: ...
