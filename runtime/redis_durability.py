"""Is this Redis configured not to lose accepted work? Checked at start, reported, never fatal.

As BullMQ does, every process looks at its Redis once it reaches it (and again every few
minutes) and says so when

- persistence is off (``appendonly no``): a crash or restart loses everything since the last
  RDB snapshot, accepted jobs included; ``appendfsync everysec`` is reported as information
  (up to about one second of writes can be lost), ``always`` loses nothing acknowledged;
- ``maxmemory-policy`` is not ``noeviction``: under memory pressure Redis would silently delete
  keys (jobs, leases, the status rows) instead of refusing writes.

Reported as a warning log line per problem, the gauge
``switchboard_redis_durability_problem{problem}`` (1 while it holds) and the list
:func:`check_redis_durability` returns (health details: queue_admin's queue health, for one). A problem
never stops the process: a development Redis without AOF is legitimate, just not for production.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from runtime.logging import get_logger

__all__ = ["RedisDurability", "check_redis_durability", "inspect_redis_durability"]

log = get_logger("runtime.redis")

PROBLEM = Gauge(
    "switchboard_redis_durability_problem",
    "1 while the process's Redis is configured so that it can lose accepted work.",
    ["problem"],
)
RECHECK_SECONDS = 300.0

_reports: dict[str, tuple[float, list[str]]] = {}
"""Redis address → (monotonic time of the last check, its problems)."""


def _address(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}")


@dataclass(frozen=True, slots=True)
class RedisDurability:
    aof_enabled: bool
    appendfsync: str
    """``always`` / ``everysec`` / ``no``, or ``""`` when CONFIG is not allowed (managed Redis)."""
    maxmemory_policy: str

    @property
    def problems(self) -> dict[str, str]:
        """Problem name → what it risks (empty: nothing accepted is lost by a crash)."""
        found: dict[str, str] = {}
        if not self.aof_enabled:
            found["persistence_off"] = (
                "redis persistence is off (appendonly no): a crash or restart loses accepted jobs; "
                "set appendonly yes with appendfsync always (or everysec: up to ~1 s of writes)"
            )
        elif self.appendfsync == "no":
            found["appendfsync_no"] = "redis appendfsync is no: the OS decides when the AOF reaches disk"
        if self.maxmemory_policy != "noeviction":
            found["eviction"] = (
                f"redis maxmemory-policy is {self.maxmemory_policy}, not noeviction: "
                "under memory pressure it deletes keys (jobs, leases) instead of refusing writes"
            )
        return found


def _info_value(info: dict[str, Any], key: str) -> str:
    value = info.get(key, "")
    return value.decode() if isinstance(value, bytes) else str(value)


async def inspect_redis_durability(client: Redis) -> RedisDurability:
    """Read the settings (INFO works everywhere; CONFIG GET only where it is allowed)."""
    persistence = await client.info("persistence")
    memory = await client.info("memory")
    appendfsync = ""
    try:
        reply = await client.config_get("appendfsync")
        appendfsync = _info_value(reply, "appendfsync")
    except RedisError:
        pass  # managed services often disable CONFIG: the AOF flag from INFO still counts
    return RedisDurability(
        aof_enabled=_info_value(persistence, "aof_enabled") == "1",
        appendfsync=appendfsync,
        maxmemory_policy=_info_value(memory, "maxmemory_policy") or "noeviction",
    )


async def check_redis_durability(client: Redis, *, force: bool = False) -> list[str]:
    """Inspect (at most every few minutes per Redis unless ``force``), report, return the problems."""
    address, now = _address(client), time.monotonic()
    previous = _reports.get(address)
    if previous is not None and not force and now - previous[0] < RECHECK_SECONDS:
        return list(previous[1])
    durability = await inspect_redis_durability(client)
    problems = durability.problems
    for name in ("persistence_off", "appendfsync_no", "eviction"):
        PROBLEM.labels(name).set(1 if name in problems else 0)
    texts = list(problems.values())
    if problems and (force or previous is None or texts != previous[1]):
        for name, text in problems.items():
            log.warning("redis can lose accepted work", redis=address, problem=name, detail=text)
    elif previous is None:
        log.info(
            "redis durability ok",
            redis=address,
            appendonly=durability.aof_enabled,
            appendfsync=durability.appendfsync or "unknown",
            maxmemory_policy=durability.maxmemory_policy,
        )
    _reports[address] = (now, texts)
    return texts
