"""Every Redis key the notify service uses itself, under one versioned prefix.

(Its two queues, ``notifications`` and ``notifications_telegram``, keep their keys in the queue
layer's namespace: ``runtime/queue/keys.py``.)

| Key                                 | Type    | TTL    | Content                                                 |
|-------------------------------------|---------|--------|---------------------------------------------------------|
| ``sb:notify:v1:inapp:<user id>``    | pub/sub | -      | JSON of each in-app message as it is stored for the user|
| ``sb:notify:v1:{<queue>}:gate:<w>`` | ZSET    | window | sends admitted in one limit window (``bot``,            |
|                                     |         |        | ``chat:<id>``, ``group:<id>``): ``<id>:<ms>`` scored by |
|                                     |         |        | the ms of their answer (of their start until then)      |
| ``sb:notify:v1:{<q>}:sending:<id>`` | STR     | bounded| present while a send of notification ``<id>`` is under |
|                                     |         |        | way, and after it was delivered (see ``send_gate.py``)  |
| ``sb:notify:v1:{<q>}:floor``        | STR     | bounded| the ticket of the one send on the wire                  |
| ``sb:notify:v1:{<q>}:doorbell``     | LIST    | -      | at most one element, pushed when the floor is let go    |

The send gate's windows carry the queue's hash tag so its script can read the queue's ``hold``
key in the same Redis Cluster slot.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "v1"
PREFIX: Final = f"sb:notify:{VERSION}:"


def inapp_channel(user_id: str) -> str:
    """Pub/sub channel of a user's new in-app messages (the live inbox)."""
    return f"{PREFIX}inapp:{user_id}"


def send_gate_window(queue: str, window: str) -> str:
    """A send-gate window of ``queue`` (``bot``, ``chat:<id>``, ``group:<id>``): the starts of
    the sends it admitted, scored by ms, expiring one window after the last of them."""
    return f"{PREFIX}{{{queue}}}:gate:{window}"


def send_gate_floor(queue: str) -> str:
    """Held by the one send of ``queue`` on the wire (its ticket), until its answer is in."""
    return f"{PREFIX}{{{queue}}}:floor"


def send_gate_doorbell(queue: str) -> str:
    """Rung (one element pushed) whenever the floor is let go; the floor's waiters block on it."""
    return f"{PREFIX}{{{queue}}}:doorbell"


def send_in_flight(queue: str, notification_id: str) -> str:
    """Present while an admitted send of the notification is under way (see ``send_gate.py``)."""
    return f"{PREFIX}{{{queue}}}:sending:{notification_id}"
