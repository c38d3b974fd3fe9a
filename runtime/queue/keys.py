"""Every Redis key of a queue, under one versioned prefix.

The prefix names the layout's version (``sbq:v3``): a change to what a key holds or how takes a
new one, so no release reads keys another laid out differently (v1 kept each running attempt -
its worker, number and start - in the job's hash as fields ``w``, ``a`` and ``s``; v2 keeps it in
``lease`` and, once it ends, in the job's ``l``; v3 packs a job's fixed fields, v2's ``p m t k n
o``, into one field ``x``). ``runtime.queue.migrate`` moves older layouts' data here.

All keys of one queue share the hash tag ``{name}`` so the Lua scripts (which build job keys
from the prefix) stay valid on Redis Cluster: every key of a queue lives in one slot.

======================================  =====  ==============================================
key                                     type   holds
======================================  =====  ==============================================
``sbq:v3:{q}:j:<id>``                   HASH   one job (fields below); deleted by retention
``sbq:v3:{q}:wait0``                    LIST   waiting ids of priority 0, oldest first
``sbq:v3:{q}:wait``                     ZSET   waiting ids of priority 1-10 and jobs put back at
                                               the head of their priority, score
                                               ``(10-priority)*2^44 + seq``; claimed before wait0
``sbq:v3:{q}:delayed``                  ZSET   delayed ids (and retry back-off), score = due ms
``sbq:v3:{q}:active``                   ZSET   claimed ids, score = lease deadline ms, and a pin
                                               (below)
``sbq:v3:{q}:lease``                    HASH   job id -> ``worker NUL attempt NUL started ms`` of
                                               each active job, and a pin (below)
``sbq:v3:{q}:completed``                ZSET   finished ids, score = finished ms
``sbq:v3:{q}:failed``                   ZSET   dead letters, score = finished ms
``sbq:v3:{q}:seq``                      STR    FIFO sequence and generated job ids
``sbq:v3:{q}:paused``                   STR    present while the queue is paused
``sbq:v3:{q}:notify``                   LIST   wake-up tokens, BLPOPed by idle workers
``sbq:v3:{q}:rl``                       LIST   sliding-window log (global limit): ``ms:count``
                                               per claim, oldest first
``sbq:v3:{q}:rln``                      STR    starts in that log (the sum of its counts)
``sbq:v3:{q}:rk:<key>``                 ZSET   sliding-window log per rate key; PEXPIREs
``sbq:v3:{q}:rk<i>:<key>``              ZSET   the same for the i-th prefix limit (1-based)
``sbq:v3:{q}:hold``                     STR    present (PX) while a provider's retry-after holds
                                               every claim
``sbq:v3:{q}:workers``                  ZSET   worker id -> last heartbeat ms
``sbq:v3:{q}:schedules``                HASH   schedule name -> the last tick taken (ms)
``sbq:v3:{q}:events``                   chan   pub/sub channel of job events (JSON)
``sbq:v3:{q}:migrating``                STR    present (PX) while a process moves the queue's v1
                                               or v2 data here (``runtime.queue.migrate``)
======================================  =====  ==============================================

The pin of ``active``: 100 ``~`` (never a job id), score +inf (never stale), added by every claim.
A sorted set with a member longer than Redis's ``zset-max-listpack-value`` (64 by default) is kept
as a skiplist; in the compact listpack encoding each ZADD and ZREM of a lease scans the whole set,
which at a worker's ~100 active jobs was a sixth of Redis's instructions per job. Counts and
listings of active jobs take the scores below +inf (:data:`ACTIVE_JOBS`). ``lease`` holds the same
pin as a field (value empty) for the same reason (``hash-max-listpack-value``).

Job hash fields (short names keep a waiting job small; fields at their default are absent: ``l``
before an attempt ended, ``r`` for a result of None):
``x`` the fixed fields, one value: ``rate key NUL priority NUL max attempts NUL enqueued ms NUL name
NUL options`` (rate key and options empty for none; the key leads so a claim under per-key limits
tells a job without one by its first byte; options JSON: trace carrier, backoff, timeout;
none of them can hold a NUL: names and rate keys are checked, JSON escapes it; see
:func:`fixed_fields`). One field, not six: a waiting job's hash is two fields (``x``, ``d``), and a
claim reads three with one HMGET and hands ``x`` to the worker as it is. Only a manual retry
rewrites it (a new max attempts). ``d`` data (JSON), ``l`` the last attempt that ended, as its
lease was (``worker NUL attempt NUL started ms``: the attempts made and when the last started),
``f`` finished ms (of a failed job; a completed job's is its score in ``completed``), ``g``
progress (JSON), ``r`` result (JSON), ``e`` errors (JSON list), ``q`` saved wait score of a job
deferred by its rate key. While a job is
active its running attempt is in ``lease`` (read with :func:`running_attempt`); whatever ends the
attempt copies it to ``l``. ``m0`` is the original max attempts of a job retried by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

PREFIX = "sbq:v3"
PRIORITY_MIN = 0
PRIORITY_MAX = 10
# Always applied with ``fullmatch``: ``$`` would let a trailing newline through.
ACTIVE_JOBS = ("-inf", "(inf")
"""The score range of the active jobs in ``active`` (its pin, at +inf, left out)."""
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
QUEUE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")


@dataclass(frozen=True, slots=True)
class QueueKeys:
    queue: str

    @property
    def prefix(self) -> str:
        return f"{PREFIX}:{{{self.queue}}}:"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}j:{job_id}"

    @property
    def wait(self) -> str:
        return self.prefix + "wait"

    @property
    def wait0(self) -> str:
        return self.prefix + "wait0"

    @property
    def delayed(self) -> str:
        return self.prefix + "delayed"

    @property
    def active(self) -> str:
        return self.prefix + "active"

    @property
    def lease(self) -> str:
        return self.prefix + "lease"

    @property
    def migrating(self) -> str:
        return self.prefix + "migrating"

    @property
    def completed(self) -> str:
        return self.prefix + "completed"

    @property
    def failed(self) -> str:
        return self.prefix + "failed"

    @property
    def paused(self) -> str:
        return self.prefix + "paused"

    @property
    def hold(self) -> str:
        return self.prefix + "hold"

    @property
    def notify(self) -> str:
        return self.prefix + "notify"

    @property
    def workers(self) -> str:
        return self.prefix + "workers"

    @property
    def events(self) -> str:
        return self.prefix + "events"

    def state_set(self, state: str) -> str:
        return {
            "waiting": self.wait,
            "delayed": self.delayed,
            "active": self.active,
            "completed": self.completed,
            "failed": self.failed,
        }[state]


class FixedFields(NamedTuple):
    """A job's fixed fields, as its hash's ``x`` packs them."""

    rate_key: str | None
    priority: int
    max_attempts: int
    enqueued_at: int
    name: str
    options: str
    """JSON, or '' for none."""


def fixed_fields(packed: bytes) -> FixedFields:
    rate_key, priority, max_attempts, enqueued_at, name, options = packed.decode().split("\0")
    return FixedFields(rate_key or None, int(priority), int(max_attempts), int(enqueued_at), name, options)


def running_attempt(lease: bytes) -> tuple[str, int, int]:
    """A ``lease`` value: the worker holding the job, the attempt it runs and when it started (ms)."""
    worker, attempt, started = lease.rsplit(b"\0", 2)
    return worker.decode(), int(attempt), int(started)
