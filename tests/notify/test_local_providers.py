"""The local providers judge what notify sends them: each refuses what the real provider would.

The Bot API server's windows and pauses run on a clock the tests step by hand, so "a second send
within the second" is exact whatever the machine's load; the push service's VAPID and payload
checks and the SMS API's credentials are driven with real requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pywebpush import WebPusher
from switchboard.notify.v1 import notify_pb2

from services.notify.channels.web_push import VapidSigner
from services.notify.local.http import RunningServer, start
from services.notify.local.telegram_api import BotApiState
from services.notify.local.telegram_api import create_app as bot_app
from services.notify.vapid import generate_private_key
from tests.notify.harness import BOT_TOKEN, Providers, notify_settings, running_notify


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def bot() -> AsyncIterator[tuple[BotApiState, SteppedClock, RunningServer]]:
    clock = SteppedClock()
    state = BotApiState(BOT_TOKEN, tolerance_s=0.0, clock=clock)
    server = await start(bot_app(state))
    try:
        yield state, clock, server
    finally:
        await server.stop()


async def send_message(server: RunningServer, chat: str, token: str = BOT_TOKEN) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        answer = await client.post(f"/bot{token}/sendMessage", json={"chat_id": chat, "text": "hi"})
    return answer.status_code, answer.json()


async def test_a_second_message_to_a_chat_within_the_second_is_429_and_pauses_the_whole_bot(
    bot: tuple[BotApiState, SteppedClock, RunningServer],
) -> None:
    state, clock, server = bot
    assert (await send_message(server, "5"))[0] == 200
    clock.now += 0.5
    status, body = await send_message(server, "5")
    assert (status, body["error_code"], body["parameters"]["retry_after"]) == (429, 429, 1)
    assert dict(state.violations_by_limit) == {"chat": 1}
    clock.now += 0.4  # another chat, during the pause: refused and counted
    assert (await send_message(server, "6"))[0] == 429
    assert state.sent_during_pause == 1
    clock.now += 0.7  # the pause (1 s from the 429) is over
    assert (await send_message(server, "5"))[0] == 200
    assert [m["chat_id"] for m in state.accepted] == ["5", "5"]
    assert (state.too_many, state.limit_violations) == (2, 1)


async def test_the_bot_is_limited_per_second_across_chats(bot: tuple[BotApiState, SteppedClock, RunningServer]) -> None:
    state, clock, server = bot
    state.rate_per_second = 3
    assert [(await send_message(server, chat))[0] for chat in ("1", "2", "3", "4")] == [200, 200, 200, 429]
    assert dict(state.violations_by_limit) == {"bot": 1}
    clock.now += 1.0
    assert (await send_message(server, "4"))[0] == 200


async def test_a_group_chat_is_limited_per_minute_on_top_of_the_chat_limit(
    bot: tuple[BotApiState, SteppedClock, RunningServer],
) -> None:
    state, clock, server = bot
    state.group_per_minute = 2
    for _ in range(2):
        assert (await send_message(server, "-100200"))[0] == 200
        clock.now += 1.0
    status, body = await send_message(server, "-100200")
    assert status == 429
    assert 55 <= body["parameters"]["retry_after"] <= 60
    assert dict(state.violations_by_limit) == {"group": 1}
    clock.now += 60.0
    assert (await send_message(server, "-100200"))[0] == 200
    assert (await send_message(server, "100200"))[0] == 200  # the same number as a private chat: no group limit


async def test_a_wrong_bot_token_is_401(bot: tuple[BotApiState, SteppedClock, RunningServer]) -> None:
    state, _, server = bot
    status, body = await send_message(server, "5", token="123:wrong")
    assert (status, body["ok"]) == (401, False)
    assert state.accepted == []


async def test_the_push_service_refuses_a_token_for_another_origin_and_a_payload_it_cannot_decrypt(
    providers: Providers,
) -> None:
    push, url = providers.push, providers.push_server.url
    mine, other = await providers.new_push_subscription(), await providers.new_push_subscription()
    signer = VapidSigner(generate_private_key(), "mailto:ops@switchboard.example")
    sealed = WebPusher({"endpoint": mine["endpoint"], "keys": mine["keys"]}).encode(b'{"body": "hi"}')
    headers = {"Content-Encoding": "aes128gcm", "TTL": "60"}
    async with httpx.AsyncClient(timeout=10) as client:
        for_elsewhere = await client.post(
            mine["endpoint"], content=sealed["body"], headers={**headers, **signer.headers("https://push.example/x")}
        )
        for_another_key = await client.post(
            other["endpoint"], content=sealed["body"], headers={**headers, **signer.headers(other["endpoint"])}
        )
        never_issued = await client.post(f"{url}/push/0000", content=sealed["body"], headers=headers)
        accepted = await client.post(
            mine["endpoint"], content=sealed["body"], headers={**headers, **signer.headers(mine["endpoint"])}
        )
    assert for_elsewhere.status_code == 401
    assert "is not this push service" in push.refused[0]
    assert for_another_key.status_code == 400
    assert push.refused[1].startswith("decrypt:")
    assert never_issued.status_code == 404
    assert accepted.status_code == 201
    assert [p["payload"] for p in push.received] == [{"body": "hi"}]


async def test_an_sms_with_wrong_credentials_fails_at_once_with_the_providers_reason(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    settings = notify_settings(redis_url, tmp_path, providers, sms_auth_token="not-the-token")
    async with running_notify(settings, providers) as notify:
        phone = notify_pb2.Recipient(phone="+4915112345678")
        nid = await notify.send(channel=notify_pb2.NOTIFICATION_CHANNEL_SMS, recipient=phone, body="b")
        status = await notify.settled(nid)
    assert status.state == notify_pb2.DELIVERY_STATE_FAILED
    assert len(status.attempts) == 1
    assert status.last_error == "sms provider 401: Authenticate"
    assert providers.sms.messages == []
