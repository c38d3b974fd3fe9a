"""Typed failures of the AMI edge, placed in the shared hierarchy of :mod:`runtime.errors`."""

from __future__ import annotations

from runtime.errors import FailedPrecondition, PermanentError, TransientError


class AmiAuthError(PermanentError):
    """Asterisk refused our Login (``Response: Error`` / ``Authentication failed``).

    Retrying cannot fix bad credentials by itself, but an operator may fix them while we wait,
    so the client retries with backoff and counts ``login_failures``.
    """


class AmiConnectionLost(TransientError):
    """The TCP connection closed (or was declared dead) while we needed it."""


class AmiNotConnected(TransientError):
    """No logged-in connection exists right now."""


class AmiTimeout(TransientError):
    """An action got no (complete) answer in time."""


class AmiProtocolError(TransientError):
    """The peer does not speak AMI (no banner, or an impossible answer)."""


class AmiActionError(FailedPrecondition):
    """Asterisk answered an action with ``Response: Error`` (e.g. ``Permission denied``)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI action {action} failed: {message}", details={"action": action})
        self.action = action
        self.reason = message
