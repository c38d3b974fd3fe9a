"""The queue layer: arq's job model on a Redis engine built for priorities, limits and inspection.

How arq is used, and why not its Worker
---------------------------------------
arq 0.28 polls (``poll_delay`` 0.5 s) and claims one job per WATCH/MULTI round trip, which caps a
process near 500 no-op jobs/s with a 385 ms pickup p50; it has no priorities, rate limits, pause,
back-off or job listings, and pickles by default.  Subclassing its Worker would still inherit the
polling claim and the key layout those features cannot be added to, so this layer *owns the
pickup*: its own Redis data model (``keys.py``) driven by Lua scripts (``lua_worker.py``,
``lua_admin.py``) with a blocking wake-up (``BLPOP`` on a notify list) and batched claims and
completions.  From arq it keeps what fits: job functions are arq job functions
(``async def f(ctx, **kwargs)``, declared bare or with ``arq.worker.func(..., timeout=,
max_tries=)``), ``ctx`` carries arq's keys (``job_id``, ``job_try``, ``enqueue_time``, ``redis``),
and ``arq.worker.Retry(defer=...)`` retries after the delay it names.

Data model (see ``keys.py`` for every key): per-job HASH; ZSETs ``wait`` (score
``(10 - priority) * 2^44 + seq``: ZPOPMIN = highest priority, FIFO within it), ``delayed`` (due
ms), ``active`` (lease deadline ms), ``completed`` / ``failed`` (finished ms, trimmed to the
retention).  All keys of a queue share the ``{queue}`` hash tag.  Data is JSON, never pickle.

Semantics
---------
* Enqueue validates (unknown job, data not fitting the function or over 512 KB, priority outside
  0..10, bad delay/attempts -> ``InvalidArgument`` naming the field, nothing enqueued); a job id
  that exists -> ``AlreadyExists``.  Transient Redis errors are retried (``RetryPolicy``); then the
  job is spooled to a durable SQLite file (``spool.py``) and flushed in order when Redis returns
  (``queue_backend_switches_total{from,to}``; ``QueueClient.health()`` is ``degraded`` meanwhile);
  without a spool ``Unavailable`` is raised.
* Claim (one Lua call for up to ``worker.CLAIM_BATCH`` = 25 free slots; under a backlog the
  next claim leaves as soon as one returns, so a new higher-priority job starts after about one
  small batch, not behind a full ``concurrency`` of ready tasks) promotes due delayed jobs,
  honours pause, the global sliding-window rate limit (a log of starts, one entry per claim:
  never more than N in any window, across every worker) and per-``rate_key`` limits (a job
  whose key is saturated is deferred to the moment its window frees, keeping its place in the
  FIFO).
* Leases: a claim is a lease (``QueueSpec.lease_s``, default 5 s) that a live worker renews every
  ``lease_s / 3``; any worker's reaper re-queues a job whose lease expired (SIGKILLed worker) within
  ``lease_s`` + ``lease_s / 5``: at-least-once.  Completing or failing checks the lease is still
  ours, so a job that was taken over cannot be finished twice.
* ``Requeue(hold_s=)`` raised by a job puts it back at the head of its priority without using
  an attempt and holds every claim of the queue for ``hold_s`` (a provider's retry-after).
  Per-key limits can be stacked by rate-key prefix (``QueueSpec.key_prefix_rate_limits``).
* Failures: ``PermanentError`` is never retried; ``Retry(defer=)`` uses its delay; anything else,
  timeouts included, backs off per the queue's (or the job's) ``RetryPolicy`` until its attempts
  are used up, then lands in ``failed`` with every attempt's error and traceback.
* SIGTERM: no new claims; active jobs get ``shutdown_grace_s``; the rest are cancelled and put back
  at the head of their priority without using an attempt.
* Events (JSON on pub/sub channel ``events``; watch them with ``watch_events``): waiting, delayed,
  active, progress, completed, retrying, failed, stalled, removed, drained, paused, resumed.
  The scripts publish only while someone listens (``PUBSUB NUMSUB`` of the channel, or any
  ``PSUBSCRIBE`` such as the admin hub's pattern; asked once per script call): with nobody
  listening a job costs Redis no event work.  On Redis Cluster those counts are per node: subscribe on the queue's node.
* Redis cost per job is kept to a few calls: a claim pops, leases and logs its whole batch in
  one call each (per job one HMGET and one HSET); completions linger up to 2 ms to gather a
  batch (``worker.COMPLETE_BATCH``), recorded with one HMGET and one HSET per job. Single
  enqueues made in the same turn of the event loop (concurrent callers) share one call.
* Wake-ups: an idle worker blocks in ``BLPOP notify`` for at most 1 s or until the next delayed job
  is due; every enqueue (delayed ones too), retry, resume, promote and put-back pushes a token, so
  the worker re-times its wait at once instead of oversleeping a short delay or back-off.
* Jobs run as one task each under ``asyncio.timeout`` (no extra ``wait_for`` task).
* Schedules (``QueueSpec.schedules``, :mod:`schedule`, :mod:`scheduler`): cron expressions (UTC)
  whose jobs every worker of the queue enqueues, each tick exactly once however many workers run
  (the tick and its job are one Lua call that refuses a tick already taken).
* Tracing: the enqueuer's context (``runtime.telemetry.inject_context``) rides in the job's options;
  the worker runs the job inside ``runtime.telemetry.use_context`` of it, so the run span is its child.
"""

from runtime.queue.admin import MAX_PAGE_SIZE, QueueAdmin
from runtime.queue.events import ALL_QUEUES_PATTERN, decode_event, watch_events
from runtime.queue.execution import JobContext, Requeue
from runtime.queue.keys import JOB_ID_PATTERN, QUEUE_NAME_PATTERN
from runtime.queue.models import AttemptError, JobInfo, JobState, QueueCounts, QueueEvent
from runtime.queue.producer import Enqueued, JobRequest, QueueClient
from runtime.queue.schedule import Schedule
from runtime.queue.spec import QueueSpec, RateLimit, Retention
from runtime.queue.spool import DiskSpool
from runtime.queue.worker import Worker

__all__ = [
    "ALL_QUEUES_PATTERN",
    "JOB_ID_PATTERN",
    "MAX_PAGE_SIZE",
    "QUEUE_NAME_PATTERN",
    "AttemptError",
    "DiskSpool",
    "Enqueued",
    "JobContext",
    "JobInfo",
    "JobRequest",
    "JobState",
    "QueueAdmin",
    "QueueClient",
    "QueueCounts",
    "QueueEvent",
    "QueueSpec",
    "RateLimit",
    "Requeue",
    "Retention",
    "Schedule",
    "Worker",
    "decode_event",
    "watch_events",
]
