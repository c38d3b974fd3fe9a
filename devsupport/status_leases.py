"""Leases for code that plays the ingest (tests, benchmarks): the status service applies a batch
only under the token the lease holder got from Redis, so they take the lease as ami_ingest does."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from switchboard.status.v1 import status_pb2

from services.ami_ingest.leader import LeaderElector

TEST_HOLDER = "tests"
"""One holder id for every test replica: taking a held lease again returns its token."""


async def take_lease(redis: Redis, source_id: str, *, holder_id: str = TEST_HOLDER, lease_ms: int = 600_000) -> int:
    """The fencing token of ``source_id``'s lease for ``holder_id`` (0 when someone else holds it).

    The token is what ami_ingest's leader would carry: above the Redis clock in µs (~1.8e15).
    """
    return await LeaderElector(redis, source_id, lease_ms=lease_ms, holder_id=holder_id).try_acquire()


async def stamp(
    redis: Redis, batches: tuple[status_pb2.IngestBatch, ...], tokens: dict[str, int] | None = None
) -> tuple[status_pb2.IngestBatch, ...]:
    """Give every batch without a token (0) its source's lease token (``tokens``: known ones)."""
    tokens = {} if tokens is None else tokens
    for item in batches:
        if not item.fencing_token and item.source_id:
            if item.source_id not in tokens:
                tokens[item.source_id] = await take_lease(redis, item.source_id)
            item.fencing_token = tokens[item.source_id]
    return batches


def lease_token(redis_url: str, source_id: str = "pbx1") -> int:
    """:func:`take_lease` for synchronous callers (benchmarks)."""

    async def take() -> int:
        client = Redis.from_url(redis_url)
        try:
            return await take_lease(client, source_id)
        finally:
            await client.aclose()

    return asyncio.run(take())
