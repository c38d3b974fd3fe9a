"""The notify service's core: accept sends, answer reads, manage inboxes and push subscriptions.

``send`` decides the whole delivery at once (``domain.requests.plan_delivery``: a bad request is
refused naming the field, nothing stored or queued), stores the notification, then queues its job
on the channel's queue with the notification id as the job id. An idempotency key seen within
24 h answers the first notification and queues nothing. A job that cannot be queued removes the
stored notification and the caller gets UNAVAILABLE: what was accepted is always on its way.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError

from runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, SwitchboardError
from runtime.queue import JobRequest, QueueClient
from services.notify.domain import sms_signature
from services.notify.domain.channels import Channel, normalize_recipient
from services.notify.domain.requests import Delivery, SendRequest, plan_delivery
from services.notify.domain.templates import TemplateLibrary
from services.notify.inbox_hub import InboxHub
from services.notify.queues import queue_name, rate_key, retry_policy
from services.notify.records import Accepted, InAppMessage, Notification, State
from services.notify.settings import NotifySettings
from services.notify.store import NotificationStore
from services.notify.user_store import UserStore
from services.notify.vapid import public_key

MAX_PAGE_SIZE = 200
MAX_LIST = 500

SMS_FINAL_STATES = {"delivered": State.DELIVERED, "undelivered": State.FAILED, "failed": State.FAILED}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class NotifyCore:
    settings: NotifySettings
    store: NotificationStore
    users: UserStore
    queues: Mapping[str, QueueClient]
    templates: TemplateLibrary
    hub: InboxHub

    # ---- sending ---------------------------------------------------------------------------
    def plan(self, request: SendRequest) -> Delivery:
        delivery = plan_delivery(
            request,
            now_ms=now_ms(),
            templates=self.templates,
            default_attempts={c: self.settings.attempts_for(c) for c in Channel},
        )
        if not self.settings.configured(delivery.channel):
            raise FailedPrecondition(f"the {delivery.channel} channel has no provider configured")
        return delivery

    async def send(self, request: SendRequest) -> Accepted:
        return await self._accept(self.plan(request))

    async def _accept(self, delivery: Delivery) -> Accepted:
        accepted = await self.store.create(uuid.uuid4().hex, delivery, now_ms())
        if not accepted.created:
            return accepted
        try:
            await self.queues[queue_name(delivery.channel)].submit(self._job(accepted.id, delivery))
        except BaseException:
            await self.store.discard(accepted.id)
            raise
        return accepted

    async def send_batch(
        self, requests: Sequence[SendRequest], *, all_or_nothing: bool = False
    ) -> list[Accepted | SwitchboardError]:
        """Each request on its own (a refused one does not stop the others), or with
        ``all_or_nothing`` every request checked first and none accepted if one is refused.

        Requests without an idempotency key are stored with one insert and queued with one
        ``enqueue_many`` per queue, in request order; those with a key likewise after them, once
        one query has found the keys already held (their holders answer instead). Only when a
        concurrent sender takes one of the keys meanwhile are the keyed ones settled one by one.
        """
        planned: list[Delivery | SwitchboardError] = []
        for index, request in enumerate(requests):
            try:
                planned.append(self.plan(request))
            except InvalidArgument as exc:
                if all_or_nothing:
                    raise InvalidArgument(
                        exc.field, f"{exc.problem} (notification {index})", details={"index": index}
                    ) from None
                planned.append(exc)
            except FailedPrecondition as exc:
                if all_or_nothing:
                    raise
                planned.append(exc)
        outcomes: dict[int, Accepted | SwitchboardError] = {
            i: p for i, p in enumerate(planned) if isinstance(p, SwitchboardError)
        }
        unkeyed = [(i, d) for i, d in enumerate(planned) if isinstance(d, Delivery) and not d.idempotency_key]
        many = await self._accept_many([d for _, d in unkeyed], all_or_nothing)
        outcomes.update(zip((i for i, _ in unkeyed), many, strict=True))
        keyed = [(i, d) for i, d in enumerate(planned) if isinstance(d, Delivery) and d.idempotency_key]
        if keyed:
            try:
                answers = await self._accept_many([d for _, d in keyed], all_or_nothing, keyed=True)
            except IntegrityError:  # a concurrent sender took one of the keys: settle each one
                answers = [await self._accept(d) for _, d in keyed]
            outcomes.update(zip((i for i, _ in keyed), answers, strict=True))
        return [outcomes[i] for i in range(len(planned))]

    async def _accept_many(
        self, deliveries: Sequence[Delivery], all_or_nothing: bool, *, keyed: bool = False
    ) -> list[Accepted | SwitchboardError]:
        """Store in one insert, queue with one call per queue. With ``keyed``, the deliveries carry
        idempotency keys: those already held answer their holder and queue nothing. A queue that
        cannot take its jobs removes their notifications: raised when ``all_or_nothing`` or
        nothing was queued, else the error answers each of them."""
        if not deliveries:
            return []
        ids = [uuid.uuid4().hex for _ in deliveries]
        pairs = list(zip(ids, deliveries, strict=True))
        stored = await (
            self.store.create_many_keyed(pairs, now_ms()) if keyed else self.store.create_many(pairs, now_ms())
        )
        accepted: list[Accepted | SwitchboardError] = list(stored)
        by_queue: dict[str, list[int]] = {}
        for index, delivery in enumerate(deliveries):
            if stored[index].created:
                by_queue.setdefault(queue_name(delivery.channel), []).append(index)
        pending = [i for group in by_queue.values() for i in group]
        created = len(pending)
        try:
            for name, group in by_queue.items():
                await self.queues[name].enqueue_many([self._job(ids[i], deliveries[i]) for i in group])
                queued = set(group)
                pending = [i for i in pending if i not in queued]
        except SwitchboardError as exc:
            await self.store.discard(*(ids[i] for i in pending))
            if all_or_nothing or len(pending) == created:
                raise
            for i in pending:
                accepted[i] = exc
        except BaseException:
            await self.store.discard(*(ids[i] for i in pending))
            raise
        return accepted

    def _job(self, notification_id: str, delivery: Delivery) -> JobRequest:
        delay_s = max(delivery.due_ms - now_ms(), 0) / 1000 if delivery.scheduled else None
        return JobRequest(
            "deliver_telegram" if delivery.channel is Channel.TELEGRAM else "deliver",
            {"notification_id": notification_id},
            job_id=notification_id,
            priority=delivery.queue_priority,
            delay_s=delay_s,
            attempts=delivery.max_attempts,
            backoff=retry_policy(self.settings, delivery.max_attempts),
            rate_key=rate_key(delivery.to) if delivery.channel is Channel.TELEGRAM else None,
        )

    # ---- reads -----------------------------------------------------------------------------
    async def status(self, notification_id: str) -> Notification:
        if not notification_id:
            raise InvalidArgument("notification_id", "must not be empty")
        return await self.store.get(notification_id)

    async def recent(self, limit: int, channel: str = "") -> list[Notification]:
        if not 0 <= limit <= MAX_LIST:
            raise InvalidArgument("limit", f"must be within 0..{MAX_LIST}")
        return await self.store.recent(limit or 50, channel)

    # ---- in-app ----------------------------------------------------------------------------
    async def inbox(
        self, user_id: str, *, unread_only: bool, page: int, page_size: int
    ) -> tuple[list[InAppMessage], int, int, int, int]:
        """Messages, unread count, total, page, page size."""
        user = normalize_recipient(Channel.DATABASE, user_id)
        page = page or 1
        page_size = page_size or 20
        if page < 1:
            raise InvalidArgument("page", "must be >= 1")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be within 1..{MAX_PAGE_SIZE}")
        messages, unread, total = await self.users.inbox(
            user, unread_only=unread_only, offset=(page - 1) * page_size, limit=page_size
        )
        return messages, unread, total, page, page_size

    async def mark_read(self, user_id: str, ids: Sequence[str], *, all_messages: bool) -> int:
        user = normalize_recipient(Channel.DATABASE, user_id)
        if not all_messages and not ids:
            raise InvalidArgument("ids", "give message ids, or all")
        return await self.users.mark_read(user, ids, all_messages=all_messages, now_ms=now_ms())

    def watch_inbox(self, user_id: str) -> AsyncIterator[dict[str, Any]]:
        return self.hub.watch(normalize_recipient(Channel.DATABASE, user_id))

    # ---- web push --------------------------------------------------------------------------
    async def register_push(self, *, user_id: str, endpoint: str, p256dh: str, auth: str, user_agent: str) -> str:
        user = normalize_recipient(Channel.BROWSER, user_id)
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname or len(endpoint) > 2048:
            raise InvalidArgument("endpoint", "must be the subscription's push service URL")
        if len(_b64url(p256dh, "p256dh")) != 65:
            raise InvalidArgument("p256dh", "must be an uncompressed P-256 public key (65 bytes, base64url)")
        if len(_b64url(auth, "auth")) != 16:
            raise InvalidArgument("auth", "must be the 16-byte auth secret (base64url)")
        return await self.users.register(
            user_id=user, endpoint=endpoint, p256dh=p256dh, auth=auth, user_agent=user_agent[:512], now_ms=now_ms()
        )

    async def unregister_push(self, *, subscription_id: str, endpoint: str) -> bool:
        if not subscription_id and not endpoint:
            raise InvalidArgument("subscription_id", "give the subscription id or its endpoint")
        return await self.users.unregister(subscription_id=subscription_id, endpoint=endpoint)

    def vapid_public_key(self) -> str:
        if not self.settings.vapid_private_key:
            raise FailedPrecondition("web push has no VAPID key configured (VAPID_PRIVATE_KEY)")
        return public_key(self.settings.vapid_private_key)

    # ---- sms status callback ---------------------------------------------------------------
    async def sms_status(self, url: str, form: Mapping[str, str], signature: str) -> Notification:
        """The provider's delivery report, authenticated by its signature over the URL and ``form``:
        ``delivered`` and ``undelivered``/``failed`` are final, the others change nothing.

        The provider signs the URL it was given (``SMS_STATUS_CALLBACK_URL``), which is what is
        checked when set: behind a proxy that rewrites the URL, the ``url`` the gateway saw differs.
        """
        signed_url = self.settings.sms_status_callback_url or url
        if not sms_signature.verify(self.settings.sms_auth_token, signed_url, form, signature):
            raise PermissionDenied("the SMS status callback's X-Twilio-Signature does not match")
        provider_id, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
        error_code, error_message = form.get("ErrorCode", ""), form.get("ErrorMessage", "")
        if not provider_id:
            raise InvalidArgument("MessageSid", "must not be empty")
        found = await self.store.find_by_provider_id(Channel.SMS.value, provider_id)
        if found is None:
            raise NotFound(f"no SMS notification with provider message id {provider_id!r}")
        final = SMS_FINAL_STATES.get(status.strip().lower())
        if final is None or found.state is final:
            return found
        error = "" if final is State.DELIVERED else f"sms {status}: {error_code} {error_message}".strip()
        await self.store.finish(found.id, state=final, error=error, at_ms=now_ms())
        return await self.store.get(found.id)


def _b64url(value: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgument(field, "must be base64url") from None
