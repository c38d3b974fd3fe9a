"""Move queue data from older key layouts (``sbq:v1``, ``sbq:v2``) to the current one (``sbq:v3``):
``python -m runtime.queue.migrate``.

A release reads only its own layout (``runtime.queue.keys``), so jobs an older release accepted -
waiting, delayed, running, and the history - are moved, not left behind: v1 to v2, then v2 to v3
(one step per layout change, each a set of ``lua_migrate`` scripts). Every worker moves its own
queue at start-up (:func:`migrate_queue` from ``runtime.queue.runner``); the command moves every
queue it finds (the older registries and a ``SCAN`` of ``sbq:v1:*`` and ``sbq:v2:*``), for queues
no worker serves yet, and to finish after the last older process stopped (an older producer still
running writes to its own layout). Both are safe to run any number of times, by any number of
processes at once:

* each queue is moved under a lock (``sbq:v3:{queue}:migrating``, renewed while it runs), so one
  process moves it while the others go on serving;
* each step is one Lua script (``lua_migrate``): a crash leaves every job wholly in one layout,
  and the next run moves the rest; with nothing left in an older layout a run changes nothing.

A running job keeps its lease (same worker, attempt, start and deadline): if its older worker is
gone the current reaper takes it over at the deadline as a stalled attempt, as the older one's would
have. Stop older workers with SIGTERM (they put their jobs back as waiting) and the question does
not arise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import cast

from redis.asyncio import Redis

from runtime.logging import get_logger
from runtime.queue import lua_migrate
from runtime.queue.keys import PREFIX, QUEUE_NAME_PATTERN, QueueKeys

log = get_logger("runtime.queue.migrate")
V1_PREFIX = "sbq:v1"
V2_PREFIX = "sbq:v2"
BATCH = 500
"""Most jobs one script call moves: a few ms of Redis time, so clients are never held up long."""
LOCK_MS = 30_000
"""The lock's lifetime, renewed before every step: a crashed mover's lock frees itself."""
# The fixed-name keys of a queue in an older layout: if none exists (and no registry entry) there
# is nothing to do.
_OLD_KEYS = (
    "wait0",
    "wait",
    "delayed",
    "active",
    "lease",
    "completed",
    "failed",
    "seq",
    "paused",
    "hold",
    "schedules",
    "rl",
    "conflicts",
)


@dataclass(frozen=True, slots=True)
class _Step:
    """One layout change: from ``src`` to ``dst`` (prefixes), moving jobs with ``move_jobs``."""

    src: str
    dst: str
    move_jobs: str

    @property
    def registry(self) -> str:
        return f"{self.src}:registry"

    def src_of(self, queue: str) -> str:
        return f"{self.src}:{{{queue}}}:"

    def dst_of(self, queue: str) -> str:
        return f"{self.dst}:{{{queue}}}:"


STEPS = (_Step(V1_PREFIX, V2_PREFIX, lua_migrate.MOVE_JOBS_V1), _Step(V2_PREFIX, PREFIX, lua_migrate.MOVE_JOBS_V2))
"""Oldest first: a v1 queue goes through v2 on its way to the current layout."""
V1_REGISTRY_KEY = STEPS[0].registry


def v1_prefix(queue: str) -> str:
    return STEPS[0].src_of(queue)


@dataclass(slots=True)
class QueueMigration:
    """What one run did to one queue."""

    queue: str
    moved: int = 0
    """Jobs moved into the current layout."""
    dropped: int = 0
    """Ids an older layout listed without a job hash (a claim drops them too)."""
    conflicts: list[str] = field(default_factory=list)
    """Ids left in an older layout because the next holds a job of that id (listed in its
    ``conflicts``, e.g. ``sbq:v1:{queue}:conflicts``)."""
    locked: bool = False
    """Another process held the queue's lock: this run moved nothing."""


async def _has_old_data(redis: Redis, queue: str) -> bool:
    for step in STEPS:
        if await cast(Awaitable[bool], redis.hexists(step.registry, queue)):
            return True
        if await redis.exists(*(step.src_of(queue) + name for name in _OLD_KEYS)):
            return True
    return False


async def migrate_queue(redis: Redis, queue: str) -> QueueMigration:
    """Move ``queue``'s older data to the current layout under its lock; a no-op (no lock taken)
    when no older layout has any."""
    if not QUEUE_NAME_PATTERN.fullmatch(queue):
        raise ValueError(f"queue name {queue!r} must match {QUEUE_NAME_PATTERN.pattern}")
    result = QueueMigration(queue)
    if not await _has_old_data(redis, queue):
        return result
    lock, token = QueueKeys(queue).migrating, uuid.uuid4().hex
    if not await redis.set(lock, token, nx=True, px=LOCK_MS):
        result.locked = True
        log.info("queue migration running elsewhere", queue=queue)
        return result
    try:
        conflicts: set[str] = set()
        for step in STEPS:
            moved, dropped, left = await _move(redis, step, queue, lock, token)
            result.moved, result.dropped = moved, result.dropped + dropped
            conflicts.update(left)
        result.conflicts = sorted(conflicts)
    finally:
        await redis.register_script(lua_migrate.RELEASE_LOCK)(keys=[lock], args=[token])
    log.info(
        "queue migrated",
        queue=queue,
        moved=result.moved,
        dropped=result.dropped,
        conflicts=len(result.conflicts),
        to=PREFIX,
    )
    if result.conflicts:
        log.warning("queue jobs left in an older layout: ids taken", queue=queue, ids=result.conflicts[:20])
    return result


async def _move(redis: Redis, step: _Step, queue: str, lock: str, token: str) -> tuple[int, int, list[str]]:
    """One step for one queue, under the lock: jobs moved, dropped, and the ids left (conflicts)."""
    src, dst = step.src_of(queue), step.dst_of(queue)
    extend = redis.register_script(lua_migrate.EXTEND_LOCK)
    move_jobs = redis.register_script(step.move_jobs)
    total_moved = total_dropped = 0
    while True:
        if not await extend(keys=[lock], args=[token, LOCK_MS]):
            raise RuntimeError(f"lost the migration lock of queue {queue!r}")
        moved, conflicts, dropped = await move_jobs(keys=[src, dst], args=[BATCH])
        total_moved, total_dropped = total_moved + moved, total_dropped + dropped
        if moved + conflicts + dropped == 0:
            break
    await redis.register_script(lua_migrate.MOVE_STATE)(keys=[src, dst])
    move_log = redis.register_script(lua_migrate.MOVE_KEY_LOG)
    async for raw in redis.scan_iter(match=src + "rk*", count=1000):
        old = raw.decode()
        await move_log(keys=[old, dst + old.removeprefix(src)])
    declaration = await cast(Awaitable[bytes | None], redis.hget(step.registry, queue))
    if declaration is not None:  # a newer worker's own declaration is newer: kept
        await cast(Awaitable[int], redis.hsetnx(f"{step.dst}:registry", queue, declaration.decode()))
        await cast(Awaitable[int], redis.hdel(step.registry, queue))
    left = [c.decode() for c in await cast(Awaitable[list[bytes]], redis.hkeys(src + "conflicts"))]
    return total_moved, total_dropped, left


async def old_queues(redis: Redis) -> list[str]:
    """Every queue with data in an older layout: the older registries' and any older key's."""
    names: set[str] = set()
    for step in STEPS:
        names.update(raw.decode() for raw in await cast(Awaitable[list[bytes]], redis.hkeys(step.registry)))
        head = step.src + ":{"
        async for raw in redis.scan_iter(match=head + "*", count=1000):
            name, sep, _ = raw.decode().removeprefix(head).partition("}:")
            if sep and QUEUE_NAME_PATTERN.fullmatch(name):
                names.add(name)
    return sorted(names)


async def migrate_all(redis: Redis) -> list[QueueMigration]:
    return [await migrate_queue(redis, name) for name in await old_queues(redis)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime.queue.migrate",
        description=f"Move every queue's data from {V1_PREFIX} and {V2_PREFIX} to {PREFIX} (safe to run again).",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="default: $REDIS_URL")
    return parser


async def _run(redis_url: str) -> int:
    redis = Redis.from_url(redis_url)
    try:
        results = await migrate_all(redis)
    finally:
        await redis.aclose()
    for r in results:
        state = "locked by another process, run again" if r.locked else f"{r.moved} jobs moved"
        left = f"; left in an older layout, id taken in the next: {', '.join(r.conflicts)}" if r.conflicts else ""
        print(f"{r.queue}: {state}" + (f", {r.dropped} listed ids without a job dropped" if r.dropped else "") + left)
    if not results:
        print(f"nothing under {V1_PREFIX} or {V2_PREFIX}: nothing to move")
    return 1 if any(r.locked or r.conflicts for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.redis_url:
        print("error: --redis-url or REDIS_URL is required", file=sys.stderr)
        return 2
    return asyncio.run(_run(args.redis_url))


if __name__ == "__main__":
    sys.exit(main())
