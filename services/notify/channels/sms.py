"""SMS through a provider speaking Twilio's Messages REST API.

``POST {SMS_API_URL}/2010-04-01/Accounts/{SMS_ACCOUNT_SID}/Messages.json``, form-encoded
``To``, ``From``, ``Body`` (and ``StatusCallback`` when configured), HTTP basic auth with the
account sid and auth token. The answer's ``sid`` is kept; the provider's delivery-status callback
later names it.
"""

from __future__ import annotations

import httpx

from services.notify.domain.outcomes import Outcome, classify_sms
from services.notify.records import Notification
from services.notify.settings import NotifySettings


class SmsSender:
    def __init__(self, settings: NotifySettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._path = f"/2010-04-01/Accounts/{settings.sms_account_sid}/Messages.json"
        self._client = httpx.AsyncClient(
            base_url=settings.sms_api_url.rstrip("/"),
            timeout=settings.notify_provider_timeout_s,
            auth=(settings.sms_account_sid, settings.sms_auth_token),
            transport=transport,
        )

    @property
    def reports_status(self) -> bool:
        """Whether the provider will call back with the delivery status."""
        return bool(self.settings.sms_status_callback_url)

    async def send(self, notification: Notification) -> Outcome:
        form = {"To": notification.to, "From": self.settings.sms_from, "Body": notification.text}
        if self.settings.sms_status_callback_url:
            form["StatusCallback"] = self.settings.sms_status_callback_url
        try:
            response = await self._client.post(self._path, data=form)
        except httpx.HTTPError as exc:
            return Outcome.transient(f"sms: {type(exc).__name__}: {exc}")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        outcome = classify_sms(response.status_code, payload, response.headers.get("retry-after"))
        if outcome.ok and self.reports_status:
            return Outcome.delivered(outcome.provider_id, awaiting_receipt=True)
        return outcome

    async def close(self) -> None:
        await self._client.aclose()
