"""Every Redis key ami_ingest uses, and their TTLs. Nothing else in the service spells a key.

| key                                   | type    | TTL         | what                                              |
|---------------------------------------|---------|-------------|---------------------------------------------------|
| ``sb:ingest:v1:leader:{source}``      | string  | lease (5 s) | ``"{holder}|{token}"`` of the replica that leads   |
| ``sb:ingest:v1:fence:{source}``       | integer | none        | last fencing token; a new lease takes a larger one |
| ``sb:ingest:v1:resync:{source}``      | pub/sub | -           | "resync now" requests for whichever replica leads |

``{source}`` identifies one Asterisk server (``AMI_SOURCE_ID``, default ``host:port``).
"""

from __future__ import annotations

PREFIX = "sb:ingest:v1:"
LEASE_TTL_MS = 5_000


def leader_key(source_id: str) -> str:
    return f"{PREFIX}leader:{source_id}"


def fence_key(source_id: str) -> str:
    return f"{PREFIX}fence:{source_id}"


def resync_channel(source_id: str) -> str:
    return f"{PREFIX}resync:{source_id}"
