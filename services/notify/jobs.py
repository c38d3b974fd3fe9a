"""The notify queues' job functions (arq convention: ``async def job(ctx, **data)``).

A job carries only the notification's id: the database holds the notification, so a job never
goes stale and its data never carries a message body through Redis. ``ctx["deliverer"]`` is the
worker's :class:`services.notify.delivery.Deliverer`, built once at worker start.
"""

from __future__ import annotations

from typing import Any

from runtime.queue import JobContext


async def deliver(ctx: JobContext, notification_id: str) -> dict[str, Any]:
    """Deliver one email, Web Push, in-app or SMS notification."""
    result: dict[str, Any] = await ctx["deliverer"].deliver(notification_id, int(ctx["job_try"]))
    return result


async def deliver_telegram(ctx: JobContext, notification_id: str) -> dict[str, Any]:
    """Deliver one Telegram message (one part of a long text per run) through the send gate."""
    result: dict[str, Any] = await ctx["deliverer"].deliver(notification_id, int(ctx["job_try"]))
    return result
