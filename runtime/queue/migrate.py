"""Move queue data from key layout v1 (``sbq:v1``) to v2 (``sbq:v2``): ``python -m runtime.queue.migrate``.

A release reads only its own layout (``runtime.queue.keys``), so jobs a v1 release accepted -
waiting, delayed, running, and the history - are moved, not left behind. Every worker moves its
own queue at start-up (:func:`migrate_queue` from ``runtime.queue.runner``); the command moves
every queue it finds (the v1 registry and a ``SCAN`` of ``sbq:v1:*``), for queues no worker
serves yet, and to finish after the last v1 process stopped (a v1 producer still running writes
to v1). Both are safe to run any number of times, by any number of processes at once:

* each queue is moved under a lock (``sbq:v2:{queue}:migrating``, renewed while it runs), so one
  process moves it while the others go on serving;
* each step is one Lua script (``lua_migrate``): a crash leaves every job wholly in v1 or wholly
  in v2, and the next run moves the rest; with nothing left in v1 a run changes nothing.

A running job keeps its lease (same worker, attempt, start and deadline): if its v1 worker is gone
the v2 reaper takes it over at the deadline as a stalled attempt, as v1's would have. Stop v1
workers with SIGTERM (they put their jobs back as waiting) and the question does not arise.
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
from runtime.queue.registry import REGISTRY_KEY

log = get_logger("runtime.queue.migrate")
V1_PREFIX = "sbq:v1"
V1_REGISTRY_KEY = f"{V1_PREFIX}:registry"
BATCH = 500
"""Most jobs one script call moves: a few ms of Redis time, so clients are never held up long."""
LOCK_MS = 30_000
"""The lock's lifetime, renewed before every step: a crashed mover's lock frees itself."""
# The fixed-name v1 keys of a queue: if none exists (and no registry entry) there is nothing to do.
_V1_KEYS = (
    "wait0",
    "wait",
    "delayed",
    "active",
    "completed",
    "failed",
    "seq",
    "paused",
    "hold",
    "schedules",
    "rl",
    "conflicts",
)


def v1_prefix(queue: str) -> str:
    return f"{V1_PREFIX}:{{{queue}}}:"


@dataclass(slots=True)
class QueueMigration:
    """What one run did to one queue."""

    queue: str
    moved: int = 0
    """Jobs now in v2."""
    dropped: int = 0
    """Ids v1 listed without a job hash (a claim drops them too)."""
    conflicts: list[str] = field(default_factory=list)
    """Ids left in v1 because v2 holds a job of that id (listed in ``sbq:v1:{queue}:conflicts``)."""
    locked: bool = False
    """Another process held the queue's lock: this run moved nothing."""


async def migrate_queue(redis: Redis, queue: str) -> QueueMigration:
    """Move ``queue``'s v1 data to v2 under its lock; a no-op (no lock taken) when v1 has none."""
    if not QUEUE_NAME_PATTERN.fullmatch(queue):
        raise ValueError(f"queue name {queue!r} must match {QUEUE_NAME_PATTERN.pattern}")
    result = QueueMigration(queue)
    src, keys = v1_prefix(queue), QueueKeys(queue)
    in_registry = await cast(Awaitable[bool], redis.hexists(V1_REGISTRY_KEY, queue))
    if not in_registry and not await redis.exists(*(src + name for name in _V1_KEYS)):
        return result
    lock, token = keys.migrating, uuid.uuid4().hex
    if not await redis.set(lock, token, nx=True, px=LOCK_MS):
        result.locked = True
        log.info("queue migration running elsewhere", queue=queue)
        return result
    extend = redis.register_script(lua_migrate.EXTEND_LOCK)
    move_jobs = redis.register_script(lua_migrate.MOVE_JOBS)
    try:
        while True:
            if not await extend(keys=[lock], args=[token, LOCK_MS]):
                raise RuntimeError(f"lost the migration lock of queue {queue!r}")
            moved, conflicts, dropped = await move_jobs(keys=[src, keys.prefix], args=[BATCH])
            result.moved, result.dropped = result.moved + moved, result.dropped + dropped
            if moved + conflicts + dropped == 0:
                break
        await redis.register_script(lua_migrate.MOVE_STATE)(keys=[src, keys.prefix])
        move_log = redis.register_script(lua_migrate.MOVE_KEY_LOG)
        async for raw in redis.scan_iter(match=src + "rk*", count=1000):
            old = raw.decode()
            await move_log(keys=[old, keys.prefix + old.removeprefix(src)])
        declaration = await cast(Awaitable[bytes | None], redis.hget(V1_REGISTRY_KEY, queue))
        if declaration is not None:  # a v2 worker's own declaration is newer: kept
            await cast(Awaitable[int], redis.hsetnx(REGISTRY_KEY, queue, declaration.decode()))
            await cast(Awaitable[int], redis.hdel(V1_REGISTRY_KEY, queue))
        result.conflicts = sorted(
            c.decode() for c in await cast(Awaitable[list[bytes]], redis.hkeys(src + "conflicts"))
        )
    finally:
        await redis.register_script(lua_migrate.RELEASE_LOCK)(keys=[lock], args=[token])
    log.info(
        "queue migrated from v1",
        queue=queue,
        moved=result.moved,
        dropped=result.dropped,
        conflicts=len(result.conflicts),
        to=PREFIX,
    )
    if result.conflicts:
        log.warning("queue jobs left in v1: their ids exist in v2", queue=queue, ids=result.conflicts[:20])
    return result


async def v1_queues(redis: Redis) -> list[str]:
    """Every queue with v1 data: the v1 registry's and any ``sbq:v1:{name}:`` key's."""
    names = {raw.decode() for raw in await cast(Awaitable[list[bytes]], redis.hkeys(V1_REGISTRY_KEY))}
    head = V1_PREFIX + ":{"
    async for raw in redis.scan_iter(match=head + "*", count=1000):
        name, sep, _ = raw.decode().removeprefix(head).partition("}:")
        if sep and QUEUE_NAME_PATTERN.fullmatch(name):
            names.add(name)
    return sorted(names)


async def migrate_all(redis: Redis) -> list[QueueMigration]:
    return [await migrate_queue(redis, name) for name in await v1_queues(redis)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime.queue.migrate",
        description=f"Move every queue's data from key layout {V1_PREFIX} to {PREFIX} (safe to run again).",
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
        left = f"; left in v1, id taken in v2: {', '.join(r.conflicts)}" if r.conflicts else ""
        print(f"{r.queue}: {state}" + (f", {r.dropped} listed ids without a job dropped" if r.dropped else "") + left)
    if not results:
        print(f"nothing under {V1_PREFIX}: nothing to move")
    return 1 if any(r.locked or r.conflicts for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.redis_url:
        print("error: --redis-url or REDIS_URL is required", file=sys.stderr)
        return 2
    return asyncio.run(_run(args.redis_url))


if __name__ == "__main__":
    sys.exit(main())
