"""The notify service's Prometheus metrics (names kept from the system it replaces)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

NOTIFICATIONS = Counter(
    "notifications_total",
    "Delivery attempts by channel and outcome (delivered|transient|permanent|rate_limited)",
    ["channel", "outcome"],
)
TELEGRAM_RETRY_AFTER = Counter(
    "telegram_retry_after_seconds_total", "Seconds the Telegram channel was paused by the Bot API's retry_after"
)
QUEUE_SIZE = Gauge("notification_queue_size", "Notifications waiting or delayed, per queue", ["queue"])
QUEUE_SWITCHES = Counter(
    "notification_queue_switches_total",
    "Times enqueueing switched backend (redis -> spool while Redis is unreachable, spool -> redis)",
    ["from", "to"],
)
