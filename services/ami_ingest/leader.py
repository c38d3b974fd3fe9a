"""Exactly one active ingest per Asterisk server: a Redis lease with a fencing token.

Every replica runs a :class:`LeaderElector`. The lease is a key holding ``holder|token`` with a
PX expiry; taking a free lease increments the fencing counter, so every new leader carries a
larger token than any leader before it. The status service refuses batches whose token is lower
than the highest it has seen, which makes a paused or partitioned former leader harmless even if
it wakes up believing it still leads.

Timing: the leader renews every ``renew_interval`` (lease/3); a standby tries to take the lease
every ``poll_interval``. When a leader dies its lease expires within ``lease_ms`` and a standby
takes over at most ``poll_interval`` later: 5 s + 1 s with the defaults, inside the 10 s budget.
A leader that finds its key taken steps down at once; one that cannot reach Redis keeps leading
until its lease would have expired (a short Redis blip costs no reconnect), then steps down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from runtime.logging import get_logger
from services.ami_ingest import keys

log = get_logger("ami_ingest.leader")

# Returns the fencing token when ARGV[1] holds (or just took) the lease, else 0. A new token is
# above both the last one and the server clock in µs (< 2^53, exact in Lua's doubles), so
# tokens keep growing even when Redis restarted without its data (the status service's record
# of the highest token is gone too, but a replica still holding an old token must not outrank
# a newer leader).
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if not current then
  local now = redis.call('TIME')
  local clock_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local token = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, clock_us)
  redis.call('SET', KEYS[2], string.format('%d', token))
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. string.format('%d', token), 'PX', ARGV[2])
  return token
end
local sep = string.find(current, '|', 1, true)
if sep and string.sub(current, 1, sep - 1) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(current, sep + 1))
end
return 0
"""

_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and current == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

LeadershipCallback = Callable[[int], Awaitable[None]]


class LeaderElector:
    """Campaigns for the lease of one Asterisk server and reports gains and losses."""

    def __init__(
        self,
        redis: aioredis.Redis,
        source_id: str,
        *,
        lease_ms: int = keys.LEASE_TTL_MS,
        poll_interval: float = 1.0,
        holder_id: str | None = None,
    ) -> None:
        self._redis = redis
        self._source_id = source_id
        self._lease_ms = lease_ms
        self._poll_interval = poll_interval
        self._renew_interval = lease_ms / 3000.0
        self.holder_id = holder_id or uuid.uuid4().hex
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self.token = 0
        self._stopping = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self.token > 0

    async def try_acquire(self) -> int:
        """One campaign round: the fencing token if this replica leads now, else 0."""
        result = await self._acquire(
            keys=[keys.leader_key(self._source_id), keys.fence_key(self._source_id)],
            args=[self.holder_id, self._lease_ms],
        )
        return int(result)

    async def run(self, on_elected: LeadershipCallback, on_deposed: LeadershipCallback) -> None:
        """Campaign until :meth:`stop`; call back on every change of leadership."""
        renewed_at = 0.0
        while not self._stopping.is_set():
            try:
                token = await self.try_acquire()
                if token:
                    renewed_at = time.monotonic()
            except (RedisError, OSError) as exc:
                log.warning("lease round failed", source=self._source_id, error=str(exc))
                # Our lease may still stand in Redis: keep leading until it would have expired,
                # so a short Redis blip does not cost an AMI reconnect and a resync.
                still_ours = self.is_leader and time.monotonic() - renewed_at < self._lease_ms / 1000.0
                token = self.token if still_ours else 0
            if token and self.is_leader and token != self.token:
                # The lease was lost and retaken in between (e.g. Redis restarted empty): a new
                # term, so the old one ends first.
                lost, self.token = self.token, 0
                log.warning("leadership renewed under a new token", source=self._source_id, fencing_token=token)
                await on_deposed(lost)
            if token and not self.is_leader:
                self.token = token
                log.info("leadership gained", source=self._source_id, fencing_token=token)
                await on_elected(token)
            elif not token and self.is_leader:
                lost, self.token = self.token, 0
                log.warning("leadership lost", source=self._source_id, fencing_token=lost)
                await on_deposed(lost)
            interval = self._renew_interval if self.is_leader else self._poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    async def stop(self) -> None:
        """Stop campaigning and hand the lease back so a standby need not wait for expiry."""
        self._stopping.set()
        if self.is_leader:
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[keys.leader_key(self._source_id)], args=[f"{self.holder_id}|{self.token}"])
            self.token = 0
