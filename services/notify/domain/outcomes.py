"""What a provider's answer means, and what happens to the notification next.

Every channel adapter turns its provider's answer into an :class:`Outcome`:

- ``delivered``: accepted by the provider (its message id kept when it gives one);
- ``transient``: may work later (network error, timeout, 5xx, SMTP 4xx, an answer that is not
  the protocol) - retried with exponential backoff until the attempts are used up;
- ``permanent``: retrying cannot help (SMTP 5xx, Telegram 400 "chat not found" and 403 "bot was
  blocked", Web Push 404/410, which also drop that subscription) - failed at once, the
  provider's reason kept;
- ``rate_limited``: the provider asks to wait ``retry_after`` seconds (Telegram 429) - the whole
  channel pauses that long and the message goes back to the queue without using an attempt.

:func:`next_step` is the decision, with the retry policy as data (:class:`runtime.retry.RetryPolicy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from runtime.retry import RetryPolicy

REASON_CHARS = 500


class OutcomeKind(StrEnum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    reason: str = ""
    retry_after_s: float | None = None
    provider_id: str = ""
    drop_subscription: bool = False
    awaiting_receipt: bool = False
    """Accepted, and the provider will report the final delivery later (SMS status callbacks)."""

    @classmethod
    def delivered(cls, provider_id: str = "", *, awaiting_receipt: bool = False) -> Outcome:
        return cls(OutcomeKind.DELIVERED, provider_id=provider_id, awaiting_receipt=awaiting_receipt)

    @classmethod
    def transient(cls, reason: str, *, retry_after_s: float | None = None) -> Outcome:
        return cls(OutcomeKind.TRANSIENT, reason[:REASON_CHARS], retry_after_s)

    @classmethod
    def permanent(cls, reason: str, *, drop_subscription: bool = False) -> Outcome:
        return cls(OutcomeKind.PERMANENT, reason[:REASON_CHARS], drop_subscription=drop_subscription)

    @classmethod
    def rate_limited(cls, retry_after_s: float, reason: str) -> Outcome:
        return cls(OutcomeKind.RATE_LIMITED, reason[:REASON_CHARS], max(retry_after_s, 0.0))

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.DELIVERED


def _is_transient_status(status: int) -> bool:
    return status >= 500 or status in (408, 425)


def classify_telegram(status: int, payload: Any) -> Outcome:
    """A Bot API answer: ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error_code",
    "description", "parameters": {"retry_after"}}``."""
    if not isinstance(payload, dict) or "ok" not in payload:
        return Outcome.transient(f"telegram answered HTTP {status} without a Bot API body")
    if payload.get("ok") is True and 200 <= status < 300:
        result = payload.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return Outcome.delivered(str(message_id) if message_id is not None else "")
    description = str(payload.get("description") or f"HTTP {status}")
    error_code = payload.get("error_code")
    code = error_code if isinstance(error_code, int) else status
    if code == 429:
        parameters = payload.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        seconds = float(retry_after) if isinstance(retry_after, int | float) else 1.0
        return Outcome.rate_limited(seconds, f"telegram {code}: {description}")
    if _is_transient_status(code):
        return Outcome.transient(f"telegram {code}: {description}")
    return Outcome.permanent(f"telegram {code}: {description}")


def classify_smtp(code: int, message: str) -> Outcome:
    """SMTP replies: 4xx is a temporary refusal, 5xx a permanent one (RFC 5321 §4.2.1)."""
    reason = f"smtp {code}: {message.strip()}"
    if 200 <= code < 400:
        return Outcome.delivered()
    if 400 <= code < 500 or code <= 0:
        return Outcome.transient(reason)
    return Outcome.permanent(reason)


def classify_web_push(status: int, body: str) -> Outcome:
    """A push service's answer (RFC 8030): 201 accepted; 404/410 the subscription is gone."""
    if 200 <= status < 300:
        return Outcome.delivered()
    reason = f"push service {status}: {body.strip()[:200]}"
    if status in (404, 410):
        return Outcome.permanent(reason, drop_subscription=True)
    if status == 429 or _is_transient_status(status):
        return Outcome.transient(reason)
    return Outcome.permanent(reason)


def classify_sms(status: int, payload: Any, retry_after_header: str | None = None) -> Outcome:
    """A Twilio-style Messages API answer: 201 with ``sid``, or ``{"code", "message"}``."""
    if 200 <= status < 300:
        if isinstance(payload, dict) and isinstance(payload.get("sid"), str):
            return Outcome.delivered(payload["sid"])
        return Outcome.transient(f"sms provider answered HTTP {status} without a message sid")
    message = payload.get("message") if isinstance(payload, dict) else None
    reason = f"sms provider {status}: {message or 'no reason given'}"
    if status == 429:
        retry = float(retry_after_header) if retry_after_header and retry_after_header.isdigit() else None
        return Outcome.transient(reason, retry_after_s=retry)
    if _is_transient_status(status):
        return Outcome.transient(reason)
    return Outcome.permanent(reason)


class Action(StrEnum):
    DONE = "done"
    RETRY = "retry"
    """Try again after ``delay_s``; this attempt counted."""
    FAIL = "fail"
    REQUEUE = "requeue"
    """Back to the queue after ``delay_s`` (the channel pauses that long); no attempt used."""


@dataclass(frozen=True, slots=True)
class NextStep:
    action: Action
    delay_s: float = 0.0
    reason: str = ""


def next_step(outcome: Outcome, attempts_made: int, policy: RetryPolicy) -> NextStep:
    """What follows ``outcome`` of attempt number ``attempts_made`` (1-based)."""
    if outcome.kind is OutcomeKind.DELIVERED:
        return NextStep(Action.DONE)
    if outcome.kind is OutcomeKind.PERMANENT:
        return NextStep(Action.FAIL, reason=outcome.reason)
    if outcome.kind is OutcomeKind.RATE_LIMITED:
        return NextStep(Action.REQUEUE, policy.delay_for(1, server_delay=outcome.retry_after_s), outcome.reason)
    delay = policy.next_delay(attempts_made, server_delay=outcome.retry_after_s)
    if delay is None:
        return NextStep(Action.FAIL, reason=f"gave up after {attempts_made} attempts: {outcome.reason}")
    return NextStep(Action.RETRY, delay, outcome.reason)
