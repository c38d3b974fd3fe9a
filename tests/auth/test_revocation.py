"""A revoked API key is refused at once by every process, not when their caches expire.

The processes here cache credentials for 300 s: a refusal within seconds can only come from the
key change announced on Redis (runtime.auth.revocation).
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from redis.asyncio import Redis

from devsupport.procs import REPO_ROOT, ServiceProcess, child_env
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until, wait_until_blocking
from runtime.auth import Authenticator
from runtime.auth.keys import parse_key
from runtime.auth.revocation import CHANNEL, announce_key_change
from runtime.config import CommonSettings
from runtime.errors import Unauthenticated
from tests.auth.harness import Keys
from tests.runtime.harness import Probe, StartProbe, probe_starter

LONG_CACHE = "300"


@pytest.fixture
def start_probe(redis_server: RedisServer) -> Iterator[StartProbe]:
    started: list[ServiceProcess] = []
    yield probe_starter(redis_server, started)
    for process in started:
        process.close()


def echo_code(probe: Probe, token: str) -> grpc.StatusCode:
    try:
        probe.call("Echo", b"x", metadata=(("authorization", f"Bearer {token}"),))
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def listeners(redis: Redis) -> int:
    [(_, count)] = await redis.pubsub_numsub(CHANNEL)
    return int(count)


def revoke_with_command(key_id: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.auth", "keys", "revoke", key_id],
        env=child_env(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refused_by(probe: Probe, token: str) -> bool:
    return echo_code(probe, token) is grpc.StatusCode.UNAUTHENTICATED


async def test_an_authenticator_forgets_a_revoked_key_as_soon_as_the_change_is_announced(
    keys: Keys, redis_url: str, redis: Redis
) -> None:
    authenticator = Authenticator(store=keys.authenticator().store, cache_seconds=300, redis_url=redis_url)
    try:
        await authenticator.authenticate(keys.read)  # the first API key starts the listener
        assert authenticator.listener is not None
        await asyncio.wait_for(authenticator.listener.subscribed.wait(), timeout=10)
        principal = await authenticator.authenticate(keys.read)  # cached for 300 s from here
        assert principal.key_id is not None
        await keys.store.revoke_key(principal.key_id)
        assert await authenticator.authenticate(keys.read) == principal  # the cache still answers
        assert await announce_key_change(redis_url, principal.key_id) == 1

        async def refused() -> bool:
            try:
                await authenticator.authenticate(keys.read)
            except Unauthenticated:
                return True
            return False

        await wait_until(refused, within=5, what="the revoked key refused")
    finally:
        await authenticator.close()


@pytest.mark.timeout(180)  # three process starts on a loaded machine
async def test_a_key_revoked_with_the_command_is_refused_at_once_by_two_running_processes(
    keys: Keys, redis_url: str, redis: Redis, start_probe: StartProbe, tmp_path: Path
) -> None:
    # The keys live in the shared auth database, not in the processes' own (AUTH_DATABASE_URL).
    env = {
        "AUTH_DATABASE_URL": keys.database_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'own.db'}",
        "AUTH_KEY_CACHE_SECONDS": LONG_CACHE,
    }
    probes = [start_probe(**env), start_probe(**env)]
    for probe in probes:
        assert echo_code(probe, keys.read) is grpc.StatusCode.OK  # verified, cached, listening

    async def both_listening() -> bool:
        return await listeners(redis) == 2

    await wait_until(both_listening, within=10, what="both processes listening for key changes")

    key_id, _ = parse_key(keys.read) or ("", "")
    revoked = revoke_with_command(key_id, {**env, "REDIS_URL": redis_url})
    assert revoked.returncode == 0, revoked.stderr
    assert "2 processes told" in revoked.stdout

    for probe in probes:
        wait_until_blocking(
            functools.partial(refused_by, probe, keys.read),
            within=5,
            what=f"the revoked key refused by {probe.address}",
        )
        assert echo_code(probe, keys.admin) is grpc.StatusCode.OK  # other keys keep working


async def test_only_a_process_given_redis_url_listens_for_key_changes(
    keys: Keys, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    given = Authenticator.from_settings(CommonSettings(database_url=keys.database_url, redis_url=redis_url))
    not_given = Authenticator.from_settings(CommonSettings(database_url=keys.database_url))
    try:
        for authenticator in (given, not_given):
            await authenticator.authenticate(keys.read)
        assert given.listener is not None
        assert not_given.listener is None  # the default localhost Redis may be nobody's: not assumed
    finally:
        await given.close()
        await not_given.close()
