"""Every Redis key the media service uses, under one versioned prefix.

| Key                      | Type    | TTL  | Content                                                              |
|--------------------------|---------|------|----------------------------------------------------------------------|
| ``sb:media:v1:events``   | pub/sub | —    | one JSON message per media state change (:mod:`services.media.events`) |

The job queues (``media-processing``, ``media-sync``, ``media-watermark``) keep their own keys in
the queue layer (``runtime.queue.keys``).
Bump ``VERSION`` (never reuse it) when a message's encoding changes incompatibly.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "v1"
PREFIX: Final = "sb:media:" + VERSION + ":"

EVENTS: Final = PREFIX + "events"
