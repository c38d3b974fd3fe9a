"""Entry point: ``python -m services.notify.worker [notifications|telegram]`` serves one notify queue.

``notifications`` (the default) delivers email, Web Push, in-app and SMS; ``telegram`` delivers
Telegram at the Bot API's limits. Each worker builds its channel adapters once (SMTP sessions,
HTTP connection pools are reused across jobs) and closes them after its last job on SIGTERM.
"""

from __future__ import annotations

import sys
from typing import Any

from redis.asyncio import Redis

from runtime.config import load_settings
from runtime.db import create_engine
from runtime.logging import get_logger
from runtime.queue import QueueSpec
from runtime.queue.runner import run_worker
from services.notify.channels.base import Sender
from services.notify.channels.email import EmailSender
from services.notify.channels.in_app import InAppSender
from services.notify.channels.sms import SmsSender
from services.notify.channels.telegram import TelegramSender
from services.notify.channels.web_push import VapidSigner, WebPushSender
from services.notify.delivery import Deliverer
from services.notify.delivery_store import BatchedDeliveryStore
from services.notify.domain.channels import Channel
from services.notify.queues import NOTIFICATIONS, TELEGRAM, queue_specs, retry_policy, telegram_limits
from services.notify.send_gate import SendGate, TelegramSendGate
from services.notify.settings import NotifySettings
from services.notify.user_store import UserStore

QUEUES = {"notifications": NOTIFICATIONS, "telegram": TELEGRAM}

log = get_logger("notify.worker")


def build_senders(settings: NotifySettings, users: UserStore, redis: Redis, queue: str) -> dict[Channel, Sender]:
    """The adapters of the channels this queue carries whose provider is configured."""
    senders: dict[Channel, Sender] = {}
    if queue == TELEGRAM:
        if settings.configured(Channel.TELEGRAM):
            senders[Channel.TELEGRAM] = TelegramSender(settings)
        return senders
    if settings.configured(Channel.EMAIL):
        senders[Channel.EMAIL] = EmailSender(settings, pool_size=settings.notify_concurrency)
    if settings.configured(Channel.BROWSER):
        signer = VapidSigner(settings.vapid_private_key, settings.vapid_subject)
        senders[Channel.BROWSER] = WebPushSender(users, signer, timeout_s=settings.notify_provider_timeout_s)
    if settings.configured(Channel.SMS):
        senders[Channel.SMS] = SmsSender(settings)
    senders[Channel.DATABASE] = InAppSender(users, redis)
    return senders


def build_gates(settings: NotifySettings, redis: Redis, queue: str) -> dict[Channel, SendGate]:
    """The send gates of this queue's channels: Telegram's limits checked right before sending."""
    if queue != TELEGRAM:
        return {}
    limits = telegram_limits(settings)
    gate = TelegramSendGate(
        redis,
        TELEGRAM,
        bot=limits.bot,
        chat=limits.chat,
        group=limits.group,
        margin_s=settings.telegram_send_margin_ms / 1000,
        bot_margin_s=settings.telegram_bot_margin_ms / 1000,
        floor_s=settings.telegram_floor_ms / 1000,
        # A send is cut off after the provider timeout; a mark older than that is a lost worker's.
        in_flight_s=settings.notify_provider_timeout_s,
    )
    return {Channel.TELEGRAM: gate}


class WorkerResources:
    """What one worker's jobs share: the database, Redis, the channel adapters, the deliverer."""

    def __init__(self, settings: NotifySettings, spec: QueueSpec) -> None:
        self.engine = create_engine(settings.async_database_url)
        self.redis = Redis.from_url(settings.redis_url)
        self.senders = build_senders(settings, UserStore(self.engine), self.redis, spec.name)
        self.deliverer = Deliverer(
            store=BatchedDeliveryStore(self.engine),
            senders=self.senders,
            policy=retry_policy(settings, spec.attempts),
            timeout_s=settings.notify_provider_timeout_s,
            gates=build_gates(settings, self.redis, spec.name),
        )

    def shared(self) -> dict[str, Any]:
        return {"deliverer": self.deliverer}

    async def close(self) -> None:
        """Close the senders, Redis and the database; a sender that fails (or a close cut short)
        does not keep the others open."""
        try:
            for sender in self.senders.values():
                try:
                    await sender.close()
                except Exception as exc:  # closing at shutdown: report and go on
                    log.warning("sender close failed", sender=type(sender).__name__, error=repr(exc))
        finally:
            try:
                await self.redis.aclose()
            finally:
                await self.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    which = args[0] if args else "notifications"
    if which not in QUEUES:
        raise SystemExit(f"usage: python -m services.notify.worker [{'|'.join(QUEUES)}]")
    settings = load_settings(NotifySettings)
    spec = queue_specs(settings)[QUEUES[which]]
    resources: WorkerResources | None = None

    async def on_startup(shared: dict[str, Any]) -> None:
        nonlocal resources
        resources = WorkerResources(settings, spec)
        shared.update(resources.shared())

    async def on_shutdown(shared: dict[str, Any]) -> None:
        if resources is not None:
            await resources.close()

    run_worker(f"notify_worker_{which}", settings, spec, on_startup=on_startup, on_shutdown=on_shutdown)


if __name__ == "__main__":
    main()
