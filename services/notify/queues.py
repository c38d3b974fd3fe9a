"""The notify queues: ``notifications`` for every channel but Telegram, and ``notifications_telegram``.

Telegram has a queue of its own because its limits are the Bot API's, enforced by the queue
layer across every worker replica: ``TELEGRAM_RATE_PER_SECOND`` starts per second for the bot,
one per second per chat (``rate_key`` ``chat:<id>``), and 20 per minute on top for group chats
(negative ids: the ``chat:-`` prefix). A 429 holds the whole queue for ``retry_after``. The same
limits are checked again right before each send (``send_gate.py``): the provider counts arrivals.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.queue import QueueSpec, RateLimit
from runtime.retry import RetryPolicy
from services.notify.domain.channels import Channel
from services.notify.jobs import deliver, deliver_telegram
from services.notify.settings import NotifySettings

NOTIFICATIONS = "notifications"
TELEGRAM = "notifications_telegram"
GROUP_RATE_PREFIX = "chat:-"


def retry_policy(settings: NotifySettings, attempts: int) -> RetryPolicy:
    """Exponential backoff from ``NOTIFY_BACKOFF_BASE_S`` (2 s): 2, 4, 8, 16 s ... up to the cap."""
    return RetryPolicy(
        attempts=attempts, base=settings.notify_backoff_base_s, cap=settings.notify_backoff_cap_s, jitter=0.1
    )


def queue_name(channel: Channel) -> str:
    return TELEGRAM if channel is Channel.TELEGRAM else NOTIFICATIONS


def rate_key(chat: str) -> str:
    """The per-chat rate key (``@`` is not a rate-key character: ``@name`` -> ``chat:at.name``)."""
    return "chat:" + (f"at.{chat[1:]}" if chat.startswith("@") else chat)


BOOKKEEPING_ALLOWANCE_S = 30.0
"""What a delivery job may spend beyond the provider's own timeout on its database and Redis
steps (reading the notification, the send gate, recording the attempt) before the queue cuts it
off. A job cut off is retried but its attempt is never recorded, so this bounds a stuck store,
not a slow one: a loaded database can take seconds."""


def job_timeout_s(settings: NotifySettings) -> float:
    """The queue's cut-off for one delivery job: the provider's timeout plus the bookkeeping."""
    return settings.notify_provider_timeout_s + BOOKKEEPING_ALLOWANCE_S


def notifications_queue(settings: NotifySettings) -> QueueSpec:
    return QueueSpec(
        name=NOTIFICATIONS,
        functions=(deliver,),
        concurrency=settings.notify_concurrency,
        attempts=settings.notify_attempts,
        backoff=retry_policy(settings, settings.notify_attempts),
        job_timeout_s=job_timeout_s(settings),
        lease_s=settings.notify_lease_s,
    )


@dataclass(frozen=True, slots=True)
class TelegramLimits:
    """The Bot API's limits, as the queue paces claims and the send gate admits sends."""

    bot: RateLimit
    chat: RateLimit | None
    group: RateLimit | None


def telegram_limits(settings: NotifySettings) -> TelegramLimits:
    return TelegramLimits(
        bot=RateLimit(settings.telegram_rate_per_second, 1.0),
        chat=RateLimit.parse(settings.telegram_chat_rate),
        group=RateLimit.parse(settings.telegram_group_rate),
    )


def telegram_queue(settings: NotifySettings) -> QueueSpec:
    limits = telegram_limits(settings)
    return QueueSpec(
        name=TELEGRAM,
        functions=(deliver_telegram,),
        concurrency=settings.notify_telegram_concurrency,
        attempts=settings.attempts_for(Channel.TELEGRAM),
        backoff=retry_policy(settings, settings.attempts_for(Channel.TELEGRAM)),
        job_timeout_s=job_timeout_s(settings),
        lease_s=settings.notify_lease_s,
        rate_limit=limits.bot,
        key_rate_limit=limits.chat,
        key_prefix_rate_limits={GROUP_RATE_PREFIX: limits.group} if limits.group else {},
    )


def queue_specs(settings: NotifySettings) -> dict[str, QueueSpec]:
    return {NOTIFICATIONS: notifications_queue(settings), TELEGRAM: telegram_queue(settings)}
