"""One delivery attempt of a stored notification, and what it leaves behind.

The job functions (``jobs.py``) call :meth:`Deliverer.deliver` with the notification id and the
queue's attempt number. A channel with a send gate (Telegram: ``send_gate.py``) asks it right
before the provider call and tells it when the answer is in; a held channel, a full window or
another send on the wire for too long puts the job back without an attempt.
The attempt is one span (``notify.deliver <channel>``, child of the job's run span, itself a
child of the ``Send`` that queued it), recorded in the database with its outcome; what follows
is :func:`services.notify.domain.outcomes.next_step`'s decision, told to the queue layer:
``Retry`` with the delay (so the stored ``nextAttemptAt`` is the real one), ``PermanentError``
(failed, never retried), or ``Requeue`` (a provider's rate limit: no attempt used, the Telegram
queue held for ``retry_after``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from arq.worker import Retry
from opentelemetry import trace

from runtime.errors import PermanentError
from runtime.logging import get_logger
from runtime.queue import Requeue
from runtime.retry import RetryPolicy
from services.notify.channels.base import Sender
from services.notify.channels.telegram import sent_parts
from services.notify.domain.channels import Channel
from services.notify.domain.outcomes import Action, Outcome, OutcomeKind, next_step
from services.notify.metrics import NOTIFICATIONS, TELEGRAM_RETRY_AFTER
from services.notify.records import AttemptOutcome, Notification, State
from services.notify.send_gate import SendGate, Verdict

log = get_logger("notify.delivery")
tracer = trace.get_tracer("services.notify")


def now_ms() -> int:
    return int(time.time() * 1000)


class DeliveryStore(Protocol):
    """What a delivery reads and writes (``store.NotificationStore``; in a worker, the batched
    ``delivery_store.BatchedDeliveryStore``)."""

    async def get(self, notification_id: str) -> Notification: ...

    async def mark_sending(self, notification_id: str) -> None: ...

    async def mark_requeued(self, notification_id: str, *, reason: str, next_attempt_at_ms: int) -> None: ...

    async def note_progress(self, notification_id: str, provider_id: str) -> None: ...

    async def record_attempt(self, notification_id: str, outcome: AttemptOutcome) -> None: ...


@dataclass
class Deliverer:
    store: DeliveryStore
    senders: Mapping[Channel, Sender]
    policy: RetryPolicy
    timeout_s: float
    gates: Mapping[Channel, SendGate] = field(default_factory=dict)

    async def deliver(self, notification_id: str, attempt: int) -> dict[str, Any]:
        notification = await self.store.get(notification_id)
        if notification.state is State.DELIVERED:
            return {"state": "delivered", "already": True}
        channel = Channel(notification.channel)
        sender = self.senders.get(channel)
        if sender is None:
            raise PermanentError(f"the {channel} channel has no provider configured in this worker")
        await self.store.mark_sending(notification_id)
        admitted = await self._pass_gate(notification, channel)
        try:
            return await self._send_and_follow(sender, notification, channel, attempt, admitted)
        except BaseException:
            # Not delivered (retry, requeue, failure): the next run may send. A delivered one
            # keeps its in-flight mark until it lapses, so a run that read the notification
            # before it was delivered cannot send it again.
            if admitted is not None:
                await admitted[0].release(notification_id)
            raise

    async def _send_and_follow(
        self,
        sender: Sender,
        notification: Notification,
        channel: Channel,
        attempt: int,
        admitted: tuple[SendGate, str] | None,
    ) -> dict[str, Any]:
        notification_id = notification.id
        with tracer.start_as_current_span(
            f"notify.deliver {channel}",
            kind=trace.SpanKind.CLIENT,
            attributes={"notify.notification_id": notification_id, "notify.attempt": attempt},
        ) as span:
            outcome = Outcome.transient("the send did not finish")
            if admitted is None:
                outcome = await self._attempt(sender, notification)
            else:
                gate, ticket = admitted
                try:
                    async with gate.on_the_wire(ticket):  # no other send starts until the answer is in
                        outcome = await self._attempt(sender, notification)
                finally:
                    # The answer is in: a 429 holds the channel before the next send may start.
                    hold_s = (outcome.retry_after_s or 0.0) if outcome.kind is OutcomeKind.RATE_LIMITED else 0.0
                    await gate.finish(ticket, notification.to, hold_s=hold_s)
            span.set_attribute("notify.outcome", outcome.kind.value)
            if not outcome.ok:
                span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.reason[:200]))
        NOTIFICATIONS.labels(channel.value, outcome.kind.value).inc()
        return await self._follow(notification, channel, attempt, outcome)

    async def _pass_gate(self, notification: Notification, channel: Channel) -> tuple[SendGate, str] | None:
        """Right before the provider call: a held channel, a full limit window, another send on
        the wire for too long or another worker sending the same notification sends the job back
        (no attempt used). Returns the gate that admitted the send and its ticket (to finish once
        the provider answered, and release once a failed outcome is stored), None without a gate."""
        gate = self.gates.get(channel)
        if gate is None:
            return None
        admission = await gate.admit(notification.id, notification.to)
        if admission.verdict is Verdict.ADMITTED:
            return gate, admission.ticket
        reason = {
            Verdict.HELD: "the channel is held by a provider's retry_after",
            Verdict.BUSY: "the channel's rate limit had no room",
            Verdict.IN_FLIGHT: "another worker is sending it",
            Verdict.FLOOR: "another send stayed on the wire",
        }[admission.verdict]
        await self.store.mark_requeued(
            notification.id, reason=reason, next_attempt_at_ms=now_ms() + round(admission.wait_s * 1000)
        )
        log.info("not sent yet", notification_id=notification.id, reason=reason, wait_s=admission.wait_s)
        raise Requeue(reason)

    async def _attempt(self, sender: Sender, notification: Notification) -> Outcome:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await sender.send(notification)
        except TimeoutError:
            return Outcome.transient(f"provider did not answer within {self.timeout_s:g} s")
        except Exception as exc:  # an adapter bug must not lose the notification: retry it
            log.exception("sender failed", notification_id=notification.id)
            return Outcome.transient(f"{type(exc).__name__}: {exc}")

    async def _follow(
        self, notification: Notification, channel: Channel, attempt: int, outcome: Outcome
    ) -> dict[str, Any]:
        nid, at = notification.id, now_ms()
        policy = RetryPolicy(
            attempts=notification.max_attempts,
            base=self.policy.base,
            cap=self.policy.cap,
            multiplier=self.policy.multiplier,
            jitter=self.policy.jitter,
        )
        step = next_step(outcome, attempt, policy)
        if step.action is Action.DONE:
            if channel is Channel.TELEGRAM:
                return await self._telegram_part_sent(notification, attempt, outcome, at)
            # An SMS accepted by a provider that reports receipts stays "sending" until it does.
            state = State.SENDING if outcome.awaiting_receipt else State.DELIVERED
            await self.store.record_attempt(nid, AttemptOutcome(attempt, at, state, provider_id=outcome.provider_id))
            log.info("accepted by provider", notification_id=nid, channel=channel.value, attempt=attempt, state=state)
            return {"state": state.value, "providerId": outcome.provider_id}
        if step.action is Action.REQUEUE:
            # A gated channel is already held: the gate set the hold when the answer came in.
            TELEGRAM_RETRY_AFTER.inc(step.delay_s)
            await self.store.mark_requeued(nid, reason=step.reason, next_attempt_at_ms=at + round(step.delay_s * 1000))
            log.warning("rate limited, channel held", notification_id=nid, retry_after_s=step.delay_s)
            raise Requeue(step.reason, hold_s=step.delay_s)
        if step.action is Action.RETRY:
            next_at = at + round(step.delay_s * 1000)
            await self.store.record_attempt(
                nid, AttemptOutcome(attempt, at, State.RETRYING, error=step.reason, next_attempt_at_ms=next_at)
            )
            log.warning("attempt failed, will retry", notification_id=nid, attempt=attempt, error=step.reason)
            raise Retry(defer=step.delay_s)
        await self.store.record_attempt(nid, AttemptOutcome(attempt, at, State.FAILED, error=step.reason))
        log.warning("failed", notification_id=nid, attempt=attempt, error=step.reason)
        raise PermanentError(step.reason)

    async def _telegram_part_sent(
        self, notification: Notification, attempt: int, outcome: Outcome, at: int
    ) -> dict[str, Any]:
        """A Telegram text goes one part per run, so each message passes the rate limits."""
        sent = [*sent_parts(notification), outcome.provider_id or "?"]
        provider_id = ",".join(sent)
        if len(sent) < len(notification.parts):
            await self.store.note_progress(notification.id, provider_id)
            raise Requeue(f"part {len(sent)} of {len(notification.parts)} sent")
        await self.store.record_attempt(
            notification.id, AttemptOutcome(attempt, at, State.DELIVERED, provider_id=provider_id)
        )
        return {"state": "delivered", "providerId": provider_id}
