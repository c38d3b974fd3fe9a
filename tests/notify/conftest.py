"""Notify fixtures: the local providers (SMTP sink, Bot API, push service, SMS API) on loopback,
the notify service on a loopback gRPC server, and in-process workers of both queues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.notify.local.http import start
from services.notify.local.push_service import PushState
from services.notify.local.push_service import create_app as push_app
from services.notify.local.sms_api import SmsState
from services.notify.local.sms_api import create_app as sms_app
from services.notify.local.smtp_sink import SmtpSink
from services.notify.local.telegram_api import BotApiState
from services.notify.local.telegram_api import create_app as bot_app
from tests.notify.harness import BOT_TOKEN, SMS_SID, SMS_TOKEN, Notify, Providers, notify_settings, running_notify


@pytest.fixture
async def providers(tmp_path: Path) -> AsyncIterator[Providers]:
    smtp = SmtpSink(maildir=tmp_path / "mail").start()
    # The queue limits starts at claim time, the server sees arrivals: on a loaded 2-core machine
    # the gap between the two varies by up to a few hundred ms, which the server's windows allow.
    bot = BotApiState(BOT_TOKEN, tolerance_s=0.25)
    push = PushState()
    sms = SmsState(SMS_SID, SMS_TOKEN)
    bot_server = await start(bot_app(bot))
    push_server = await start(push_app(push))
    push.origin = push_server.url
    sms_server = await start(sms_app(sms))
    try:
        yield Providers(smtp, bot, bot_server, push, push_server, sms, sms_server)
    finally:
        for server in (bot_server, push_server, sms_server):
            await server.stop()
        smtp.stop()


@pytest.fixture
async def notify(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[Notify]:
    async with running_notify(notify_settings(redis_url, tmp_path, providers), providers) as started:
        yield started
