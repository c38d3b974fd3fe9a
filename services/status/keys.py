# ruff: noqa: E501  (the key table below has long rows; tests/test_readme_keys.py checks the README lists the same keys)
"""Every Redis key and TTL the status service uses, under one versioned prefix.

All keys share the hash tag ``{sb:status:v1}`` so they live in one Redis Cluster slot: the
batch script touches all of them in one atomic call. Bump ``VERSION`` (never reuse it) when a
value's encoding changes incompatibly; old and new services then never read each other's rows.

| Key                          | Type   | TTL                  | Content                                                                                           |
|------------------------------|--------|----------------------|---------------------------------------------------------------------------------------------------|
| ``{sb:status:v1}:operators`` | HASH   | ``LIVE_TTL_SECONDS`` | field ``<queue>\\x1f<member_id>`` → serialized ``status.v1.Operator``                              |
| ``{sb:status:v1}:queues``    | HASH   | ``LIVE_TTL_SECONDS`` | field ``<queue name>`` → serialized ``status.v1.Queue`` (``waiting``/``longest_wait`` are computed at read time) |
| ``{sb:status:v1}:channels``  | HASH   | ``LIVE_TTL_SECONDS`` | field ``<uniqueid>`` → serialized ``status.v1.Channel``                                           |
| ``{sb:status:v1}:meta``      | HASH   | none                 | ``revision`` (INCR per applied change set), ``beat`` (heartbeats since it), ``last_ingest_at`` and ``touched_at`` (epoch s), ``fence:<source_id>`` (highest fencing token seen) |
| ``{sb:status:v1}:owners``    | HASH   | ``LIVE_TTL_SECONDS`` | field ``<kind>:<row field>`` (kind ``o``/``q``/``c``) → the ``source_id`` whose batches wrote the row; a ``replace_all`` removes only its own source's rows (and rows nobody owns) |
| ``{sb:status:v1}:changes``   | STREAM | ``LIVE_TTL_SECONDS`` | entry id ``<revision>-<n>``; ``cs`` = serialized ``status.v1.ChangeSet`` (``n`` = 0), ``at`` = last_ingest_at, ``tt`` = touched_at; heartbeat entries (``n`` ≥ 1) carry only ``at``/``tt``. Trimmed with ``MAXLEN ~ STREAM_MAXLEN`` |

Why this shape:

- One HASH per entity kind: a snapshot is three HGETALLs, a batch is a handful of HSET/HDEL on
  three keys, and the TTL refresh is three EXPIREs — whatever the number of rows.
- ``owners`` records which Asterisk server (``source_id``) wrote each row, so one server's
  resync (a ``replace_all``) replaces its own rows and never another server's.
- The fencing check reads the lease key of :mod:`services.ami_ingest.keys` (``leader:{source}``)
  in the same script: a batch is applied only under the token the lease holder got from Redis.
  Status and ami_ingest therefore share one Redis (not a cluster: that key is in another slot).
- ``meta`` carries no TTL: the revision must never go backwards while the service runs, and
  the fencing tokens must outlive a quiet ingest. (A Redis restarted empty restarts revisions
  at 1; every follower reloads after a reconnect and watchers get a fresh snapshot.)
- The stream id's first part is the revision, so a follower resumes with ``XREAD`` from
  ``<revision>-0`` and a gap in revisions (trimmed stream, missed entries) means "reload".
- Live keys expire ``LIVE_TTL_SECONDS`` after the last batch (ami_ingest sends empty heartbeat
  batches every few seconds): a dead ingest cannot leave a frozen picture behind forever.
  Reads say ``stale`` long before that (``STATUS_STALE_AFTER_SECONDS``, default 15 s).
"""

from __future__ import annotations

from typing import Final

from runtime.status_model.rules import operator_key

VERSION: Final = "v1"
PREFIX: Final = "{sb:status:" + VERSION + "}:"

OPERATORS: Final = PREFIX + "operators"
QUEUES: Final = PREFIX + "queues"
CHANNELS: Final = PREFIX + "channels"
META: Final = PREFIX + "meta"
CHANGES: Final = PREFIX + "changes"
OWNERS: Final = PREFIX + "owners"

ALL_KEYS: Final = (OPERATORS, QUEUES, CHANNELS, META, CHANGES, OWNERS)
"""Every key the service owns (Clear removes exactly these), in the order the scripts take them."""

LIVE_KEYS: Final = (OPERATORS, QUEUES, CHANNELS, CHANGES, OWNERS)
"""Keys whose TTL every batch refreshes."""

LIVE_TTL_SECONDS: Final = 300
"""Default TTL of the live keys (overridable: ``STATUS_LIVE_TTL_SECONDS``)."""

STREAM_MAXLEN: Final = 10_000
"""Approximate bound of the change stream (``XADD MAXLEN ~``)."""

META_REVISION: Final = "revision"
META_LAST_INGEST_AT: Final = "last_ingest_at"
META_TOUCHED_AT: Final = "touched_at"
FENCE_FIELD_PREFIX: Final = "fence:"

operator_field = operator_key
"""Hash field of one operator row: the read model's operator key, ``<queue>\\x1f<member_id>``."""


def fence_field(source_id: str) -> str:
    """Field of ``META`` holding the highest fencing token seen for ``source_id``."""
    return FENCE_FIELD_PREFIX + source_id
