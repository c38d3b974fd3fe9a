"""Web Push (RFC 8030) with pywebpush: payload encrypted with aes128gcm (RFC 8188) for each of the
user's subscriptions, requests signed with a VAPID JWT (RFC 8292).

A user's notification goes to every subscription they registered; it is delivered when at least
one push service accepted it. A push service answering 404 or 410 says the subscription is gone:
it is removed, so nobody pushes to it again.

The pushes of one attempt run at once, each cut off at ``PUSH_SHARE_OF_TIMEOUT`` of the provider
timeout: the attempt learns every push's outcome before the deliverer's own timeout (the whole
provider timeout) would cut it off, which would retry the attempt and push again to the devices
that had accepted it. An attempt is retried only when no push service accepted it.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

import aiohttp
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from services.notify.coalesce import Coalescer
from services.notify.domain.outcomes import Outcome, OutcomeKind, classify_web_push
from services.notify.records import Notification, PushSubscription
from services.notify.user_store import UserStore
from services.notify.vapid import load_vapid

TOKEN_LIFETIME_S = 12 * 3600
TTL_S = 24 * 3600
PUSH_SHARE_OF_TIMEOUT = 0.8


class VapidSigner:
    """VAPID ``Authorization`` headers, one token per push-service origin reused until near expiry."""

    def __init__(self, private_key: str, subject: str) -> None:
        self._vapid: Vapid02 = load_vapid(private_key)
        self._subject = subject
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}

    def headers(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._cache.get(audience)
        if cached is not None and cached[0] - now > 600:
            return dict(cached[1])
        expires = now + TOKEN_LIFETIME_S
        signed = self._vapid.sign({"aud": audience, "sub": self._subject, "exp": int(expires)})
        self._cache[audience] = (expires, signed)
        return dict(signed)


class WebPushSender:
    def __init__(self, users: UserStore, signer: VapidSigner, *, timeout_s: float) -> None:
        self.users = users
        self.signer = signer
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        # The pushes a worker runs at once look their users' subscriptions up in one query.
        self._subscriptions: Coalescer[str, list[PushSubscription]] = Coalescer(users.subscriptions_of, lambda _: [])

    def payload(self, notification: Notification) -> bytes:
        return json.dumps(
            {
                "notificationId": notification.id,
                "title": notification.subject,
                "body": notification.text,
                "data": notification.data,
            }
        ).encode()

    async def send(self, notification: Notification) -> Outcome:
        subscriptions = await self._subscriptions.get(notification.to)
        if not subscriptions:
            return Outcome.permanent(f"user {notification.to!r} has no push subscription")
        data = self.payload(notification)
        outcomes = await asyncio.gather(*(self._push(subscription, data) for subscription in subscriptions))
        delivered = [o for o in outcomes if o.ok]
        if delivered:
            return Outcome.delivered(f"{len(delivered)}/{len(outcomes)} subscriptions")
        transient = [o for o in outcomes if o.kind is OutcomeKind.TRANSIENT]
        return transient[0] if transient else outcomes[0]

    async def _push(self, subscription: PushSubscription, data: bytes) -> Outcome:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            pusher = WebPusher(subscription.info(), aiohttp_session=self._session)
            response = await pusher.send_async(
                data=data,
                headers=self.signer.headers(subscription.endpoint),
                ttl=TTL_S,
                content_encoding="aes128gcm",
                timeout=aiohttp.ClientTimeout(total=self.timeout_s * PUSH_SHARE_OF_TIMEOUT),
            )
        except WebPushException as exc:  # a subscription whose keys cannot be used
            await self.users.unregister(subscription_id=subscription.id)
            return Outcome.permanent(f"push subscription unusable: {exc}", drop_subscription=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Outcome.transient(f"push service: {type(exc).__name__}: {exc}")
        assert not isinstance(response, str)  # only curl=True returns text
        outcome = classify_web_push(response.status, await response.text())
        if outcome.drop_subscription:
            await self.users.unregister(subscription_id=subscription.id)
        return outcome

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
