"""``GET /api/notifications-local-sinks``: what the local providers received, sent there by the real
notify service and workers, answered in the API's convention (camelCase keys, ``receivedAt`` in
epoch ms) and valid against the published OpenAPI schema."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devsupport.auth import AUTH_HEADERS
from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.notify.local.__main__ import sinks_app
from services.notify.local.http import start
from tests.gateway.conventions import check_against_openapi, convention_breaks
from tests.gateway.harness import LiveGateway
from tests.notify.harness import Providers, notify_settings, running_notify
from tests.notify.test_gateway_api import Api

pytestmark = pytest.mark.timeout(90)
SINKS = "/api/notifications-local-sinks"


@pytest.fixture
async def api(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[Api]:
    sinks = await start(sinks_app(providers.smtp, providers.bot, providers.push, providers.sms))
    settings = notify_settings(redis_url, tmp_path, providers)
    async with running_notify(settings, providers) as notify:
        gateway = LiveGateway()
        try:
            await gateway.start(
                create_app(
                    GatewaySettings(
                        notify_addr=notify.settings.notify_addr, gateway_status_mirror=False, notify_sinks_url=sinks.url
                    )
                )
            )
            async with httpx.AsyncClient(base_url=gateway.url, timeout=30, headers=AUTH_HEADERS) as http:
                yield Api(http, notify, gateway)
        finally:
            await gateway.stop()
            await sinks.stop()


async def test_what_each_provider_received_is_answered_in_the_convention_and_the_published_schema(
    api: Api, providers: Providers
) -> None:
    subscription = await providers.new_push_subscription()
    registered = await api.http.post(
        "/api/push/subscriptions",
        json={"userId": "u9", "endpoint": subscription["endpoint"], "keys": subscription["keys"]},
    )
    assert registered.status_code == 201, registered.text
    before_ms = time.time_ns() // 1_000_000
    sent = [
        *await api.send(channel="email", to="ann@example.com", subject="Hello", text="Hi Ann"),
        *await api.send(channel="telegram", to="4242", text="Queue sales: 5 waiting"),
        *await api.send(channel="browser", to="u9", subject="Hi", text="pushed"),
        *await api.send(channel="sms", to="+15550002222", text="Callback due"),
    ]
    assert [(await api.settled(nid))["state"] for nid in sent] == ["delivered"] * 4
    after_ms = time.time_ns() // 1_000_000

    answer = await api.http.get(SINKS)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert convention_breaks(body) == []
    check_against_openapi((await api.http.get("/openapi.json")).json(), "get", SINKS, 200, body)
    data = body["data"]
    (mail,), (chat,), (push,), (sms,) = data["email"], data["telegram"], data["browser"], data["sms"]
    assert (mail["to"], mail["subject"], mail["text"].strip()) == (["ann@example.com"], "Hello", "Hi Ann")
    assert (chat["chatId"], chat["text"], chat["messageId"]) == ("4242", "Queue sales: 5 waiting", 1)
    assert (push["subscription"], push["payload"]["body"]) == (subscription["endpoint"].rsplit("/", 1)[1], "pushed")
    assert push["ttlMs"] is None or push["ttlMs"] % 1000 == 0
    assert (sms["to"], sms["body"], sms["sender"]) == ("+15550002222", "Callback due", "+15550001111")
    for record in (mail, chat, push, sms):
        assert before_ms <= record["receivedAt"] <= after_ms
    assert data["pushServiceUrl"] == providers.push_server.url
