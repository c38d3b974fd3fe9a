"""Every Redis key the notify service uses itself, under one versioned prefix.

(Its two queues, ``notifications`` and ``notifications_telegram``, keep their keys in the queue
layer's namespace: ``runtime/queue/keys.py``.)

| Key                                 | Type    | TTL  | Content                                                   |
|-------------------------------------|---------|------|-----------------------------------------------------------|
| ``sb:notify:v1:inapp:<user id>``    | pub/sub | -    | JSON of each in-app message as it is stored for the user  |
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "v1"
PREFIX: Final = f"sb:notify:{VERSION}:"


def inapp_channel(user_id: str) -> str:
    """Pub/sub channel of a user's new in-app messages (the live inbox)."""
    return f"{PREFIX}inapp:{user_id}"
