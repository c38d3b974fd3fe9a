"""Telegram's Bot API ``sendMessage`` over HTTPS (httpx, one connection pool per worker).

A text of several parts is sent one part per call: the job sends the next part each time it
runs, so every message passes the queue's rate limits (see ``services/notify/delivery.py``).
"""

from __future__ import annotations

import httpx

from services.notify.domain.outcomes import Outcome, classify_telegram
from services.notify.records import Notification
from services.notify.settings import NotifySettings


def sent_parts(notification: Notification) -> list[str]:
    """Message ids of the parts already sent (kept in ``provider_id``, comma-separated)."""
    return [p for p in notification.provider_id.split(",") if p]


class TelegramSender:
    def __init__(self, settings: NotifySettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._path = f"/bot{settings.telegram_bot_token}/sendMessage"
        self._client = httpx.AsyncClient(
            base_url=settings.telegram_api_url.rstrip("/"),
            timeout=settings.notify_provider_timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )

    async def send(self, notification: Notification) -> Outcome:
        part = notification.parts[len(sent_parts(notification))]
        body = {"chat_id": notification.to, "text": part, "parse_mode": "HTML", "disable_web_page_preview": True}
        try:
            response = await self._client.post(self._path, json=body)
        except httpx.HTTPError as exc:
            return Outcome.transient(f"telegram: {type(exc).__name__}: {exc}")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return classify_telegram(response.status_code, payload)

    async def close(self) -> None:
        await self._client.aclose()
