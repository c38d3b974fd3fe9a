"""``python -m services.notify.local``: the four local providers in one process (``make run``).

Ports from the environment (defaults in parentheses): ``NOTIFY_SINK_SMTP_PORT`` (2525),
``NOTIFY_SINK_TELEGRAM_PORT`` (8081), ``NOTIFY_SINK_PUSH_PORT`` (8082), ``NOTIFY_SINK_SMS_PORT``
(8083), and ``NOTIFY_SINKS_PORT`` (8084) where ``GET /_log`` answers what all four received (the
admin page shows it). Mail is also written to ``DATA_DIR/mail`` as ``.eml`` files. The Bot API
token and the SMS account come from ``TELEGRAM_BOT_TOKEN``, ``SMS_ACCOUNT_SID`` and
``SMS_AUTH_TOKEN`` (what ``make run`` gives the notify workers too).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from services.notify.local.http import start
from services.notify.local.push_service import PushState
from services.notify.local.push_service import create_app as push_app
from services.notify.local.sms_api import SmsState
from services.notify.local.sms_api import create_app as sms_app
from services.notify.local.smtp_sink import SmtpSink
from services.notify.local.telegram_api import BotApiState
from services.notify.local.telegram_api import create_app as bot_app

RECENT = 50


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def sinks_app(smtp: SmtpSink, bot: BotApiState, push: PushState, sms: SmsState) -> web.Application:
    async def log(request: web.Request) -> web.Response:
        mails: list[dict[str, Any]] = []
        for item in smtp.received[-RECENT:]:
            message = item.message
            body = message.get_body(("plain",))
            mails.append(
                {
                    "to": item.rcpt_tos,
                    "subject": str(message["Subject"] or ""),
                    "text": body.get_content() if body is not None else "",
                    "at": item.at,
                }
            )
        return web.json_response(
            {
                "email": mails,
                "telegram": bot.accepted[-RECENT:],
                "browser": push.received[-RECENT:],
                "sms": sms.messages[-RECENT:],
                "pushServiceUrl": push.origin,
            }
        )

    app = web.Application()
    app.router.add_get("/_log", log)
    return app


async def serve() -> None:
    data_dir = Path(os.environ.get("DATA_DIR") or ".data")
    smtp = SmtpSink(port=_port("NOTIFY_SINK_SMTP_PORT", 2525), maildir=data_dir / "mail").start()
    bot = BotApiState(os.environ.get("TELEGRAM_BOT_TOKEN") or "local-bot-token")
    push = PushState()
    sms = SmsState(os.environ.get("SMS_ACCOUNT_SID") or "AClocal", os.environ.get("SMS_AUTH_TOKEN") or "local")
    servers = [
        await start(bot_app(bot), port=_port("NOTIFY_SINK_TELEGRAM_PORT", 8081)),
        await start(push_app(push), port=_port("NOTIFY_SINK_PUSH_PORT", 8082)),
        await start(sms_app(sms), port=_port("NOTIFY_SINK_SMS_PORT", 8083)),
    ]
    push.origin = servers[1].url
    servers.append(await start(sinks_app(smtp, bot, push, sms), port=_port("NOTIFY_SINKS_PORT", 8084)))
    print(
        f"local providers: smtp 127.0.0.1:{smtp.port}, telegram {servers[0].url}, push {servers[1].url}, "
        f"sms {servers[2].url}, log {servers[3].url}/_log",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        await server.stop()
    smtp.stop()


if __name__ == "__main__":
    asyncio.run(serve())
