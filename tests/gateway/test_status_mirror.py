"""The gateway's status mirror against the REAL status service on a real Redis: its answers equal
what the status service answers directly, it never answers stale or from a dead watch."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog.testing
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from switchboard.status.v1 import status_pb2 as S

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import ANY_LOOPBACK_PORT, free_port
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import BACKEND_NAMES, GatewaySettings
from gateway.status_json import queue_json, snapshot_json
from gateway.status_json_state import JsonReadState
from gateway.status_mirror import StatusMirror
from gateway.status_reads import STATUS_READS
from runtime.grpc_server import GrpcServer
from runtime.status_model import queue_view
from services.status.app import create_app as create_status_app
from services.status.settings import StatusSettings
from tests.gateway.fake_status import GrpcBackend, operator, start_backend
from tests.gateway.harness import client_for
from tests.gateway.test_real_status import RealStatus

API = "/api/queue-status"
STALE_AFTER = 1.0
STEADY = 3600.0
"""A threshold no test reaches: comparing answers must not race the state turning stale."""
ROOMY_STALE_AFTER = 4.0
"""Long enough that a loaded machine cannot turn the state stale between a fresh wait and the read
that follows it (with STALE_AFTER, 1 s, a read at load 15 was answered by gRPC, not the mirror)."""
HEARTBEAT = 0.1
NOW = time.time()


def _status_settings(redis_url: str, tmp_path: Path, stale_after: float = STALE_AFTER) -> StatusSettings:
    return StatusSettings(
        redis_url=redis_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'status.db'}",
        # Only for a gateway started before its status service (which binds it then); the
        # ``real_status`` fixture binds a port the OS picks.
        status_addr=f"127.0.0.1:{free_port()}",
        ami_ingest_addr=f"127.0.0.1:{free_port()}",
        status_resync_timeout_seconds=0.3,
        status_stale_after_seconds=stale_after,
        status_watch_heartbeat_seconds=HEARTBEAT,
        log_level="WARNING",
    )


async def _serve_status(settings: StatusSettings, address: str = ANY_LOOPBACK_PORT) -> GrpcServer:
    """A status app served on ``address`` (by default a port the OS picks: read ``server.port``)."""
    app = await create_status_app(settings)
    await app.start()
    server = GrpcServer(
        dataclasses.replace(app.grpc_service(), address=address),
        authenticator=authenticator_for_tests(),
        grace_seconds=0.2,
        health_interval_seconds=0.2,
    )
    await server.start()
    return server


@pytest.fixture
def stale_after() -> float:
    """The staleness threshold of the status service and the gateway (a test may parametrize it)."""
    return STALE_AFTER


@pytest.fixture
def status_settings(redis_url: str, tmp_path: Path, stale_after: float) -> StatusSettings:
    return _status_settings(redis_url, tmp_path, stale_after)


@pytest.fixture
async def real_status(status_settings: StatusSettings) -> AsyncIterator[RealStatus]:
    server = await _serve_status(status_settings)
    address = f"127.0.0.1:{server.port}"
    channel = aio_channel(address)
    redis = Redis.from_url(status_settings.redis_url)
    status = RealStatus(address, server, channel, redis)
    try:
        yield status
    finally:
        await redis.aclose()
        await channel.close()
        await status.server.stop()  # a test may have replaced the server (a restart)


@pytest.fixture
async def others() -> AsyncIterator[dict[str, str]]:
    backends: dict[str, GrpcBackend] = {name: await start_backend() for name in BACKEND_NAMES if name != "status"}
    try:
        yield {f"{name}_addr": backend.address for name, backend in backends.items()}
    finally:
        for backend in backends.values():
            await backend.stop()


def _settings(
    status: RealStatus, others: dict[str, str], *, mirror: bool, stale_after: float = STALE_AFTER
) -> GatewaySettings:
    return GatewaySettings(
        status_addr=status.address,
        gateway_status_mirror=mirror,
        status_stale_after_seconds=stale_after,
        **others,  # type: ignore[arg-type]
    )


def _reads(path: str) -> float:
    return STATUS_READS.labels(path)._value.get()


def _same_answer(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Equal except the time of the answer: ``longestWaitMs - asOf`` (= -earliest caller) must agree."""
    mine, theirs = dict(mine), dict(theirs)
    now_mine, now_theirs = mine.pop("asOf"), theirs.pop("asOf")
    for queue_mine, queue_theirs in zip(mine.get("queues", []), theirs.get("queues", []), strict=True):
        if queue_mine["callers"]:  # each side rounded to whole ms
            assert queue_mine["longestWaitMs"] - now_mine == pytest.approx(
                queue_theirs["longestWaitMs"] - now_theirs, abs=2
            )
            queue_mine["longestWaitMs"] = queue_theirs["longestWaitMs"]
    assert mine == theirs


STEPS: list[tuple[S.StateChange, ...]] = [
    (
        S.StateChange(queue_upserted=S.Queue(name="sales", strategy="ringall", completed=3)),
        S.StateChange(queue_upserted=S.Queue(name="support", strategy="leastrecent")),
        S.StateChange(operator_upserted=operator("sales", "Local/1001@agents", "Алиса")),
        S.StateChange(operator_upserted=operator("support", "Local/1001@agents", "Алиса", paused=True)),
        S.StateChange(operator_upserted=operator("sales", "PJSIP/1002", "Bob", status=S.MEMBER_STATUS_IN_USE)),
    ),
    (S.StateChange(operator_upserted=operator("sales", "PJSIP/1002", "Bob", paused=True, paused_reason="Break")),),
    (
        S.StateChange(
            queue_upserted=S.Queue(
                name="sales",
                strategy="ringall",
                waiting=1,
                callers=[S.Caller(channel="Local/2002@c;2", position=1, waiting_since=NOW - 30, unique_id="9.2")],
            )
        ),
        S.StateChange(channel_upserted=S.Channel(channel_name="Local/2002@c;2", unique_id="9.2", state="Ring")),
    ),
    (S.StateChange(operator_upserted=operator("billing", "PJSIP/1000", "Ann", status=S.MEMBER_STATUS_RINGING)),),
    (
        S.StateChange(operator_removed=S.OperatorKey(queue_name="sales", member_id="Local/1001@agents")),
        S.StateChange(queue_upserted=S.Queue(name="sales", strategy="ringall", completed=4)),
        S.StateChange(channel_removed="9.2"),
    ),
    (S.StateChange(queue_removed="support"),),
]


@pytest.mark.parametrize("stale_after", [STEADY])
async def test_mirror_answers_equal_the_status_service_across_changes(
    real_status: RealStatus, others: dict[str, str], stale_after: float
) -> None:
    mirrored_app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after))
    async for mirrored in client_for(mirrored_app):
        async for direct in client_for(
            create_app(_settings(real_status, others, mirror=False, stale_after=stale_after))
        ):
            mirror: StatusMirror = mirrored_app.state.status_mirror
            for step in STEPS:
                revision = await real_status.ingest(*step)
                assert await mirror.wait_fresh(revision, 5)
                before = _reads("mirror")
                snapshot = (await mirrored.get(f"{API}/snapshot")).json()
                assert _reads("mirror") == before + 1, "answered by the mirror"
                assert snapshot["success"] is True
                expected = snapshot_json(await real_status.stub.GetSnapshot(S.GetSnapshotRequest()))
                assert snapshot["data"]["revision"] == revision
                _same_answer({**snapshot["data"], **snapshot["meta"]}, expected)
                # The gRPC path keeps each row's JSON from the earlier steps: a changed row is new.
                by_grpc = (await direct.get(f"{API}/snapshot")).json()
                assert by_grpc["data"]["revision"] == revision
                _same_answer({**by_grpc["data"], **by_grpc["meta"]}, expected)
                for path in (
                    "/operators",
                    "/operators?status=in_use",
                    "/operators?paused=true&queue=sales",
                    "/operators/queue/sales",
                    "/operators/PJSIP/1002",
                    "/queues",
                    "/queues/sales",
                    "/channels",
                ):
                    mine = (await mirrored.get(API + path)).json()
                    theirs = (await direct.get(API + path)).json()
                    _same_answer(mine["meta"], theirs["meta"])
                    if path == "/queues":
                        for queue in mine["data"] + theirs["data"]:
                            queue["longestWaitMs"] = round((queue["longestWaitMs"] - mine["meta"]["asOf"]) / 1000)
                    if path == "/queues/sales":
                        for body in (mine, theirs):
                            body["data"]["queue"]["longestWaitMs"] = 0
                    mine.pop("meta"), theirs.pop("meta")
                    assert mine == theirs, path
            assert _reads("mirror") > 0


def _no_view(mirror: StatusMirror) -> Callable[[], bool]:
    """A check: the mirror gives no answer (reads go to the status service)."""
    return lambda: mirror.view() is None


@pytest.mark.parametrize("stale_after", [ROOMY_STALE_AFTER])
async def test_a_quiet_ingest_turns_stale_through_the_status_service(
    real_status: RealStatus, others: dict[str, str], stale_after: float
) -> None:
    app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after))
    async for client in client_for(app):
        revision = await real_status.ingest(S.StateChange(queue_upserted=S.Queue(name="sales")))
        assert await app.state.status_mirror.wait_fresh(revision, 5)
        fresh = (await client.get(f"{API}/snapshot")).json()["meta"]
        assert fresh["stale"] is False
        mirror: StatusMirror = app.state.status_mirror
        await wait_until(_no_view(mirror), within=stale_after + 10, what="the mirror sees the ingest quiet")
        before = _reads("grpc")
        stale_body = (await client.get(f"{API}/snapshot")).json()
        stale = {**stale_body["data"], **stale_body["meta"]}
        assert (stale["stale"], stale["source"], stale["revision"]) == (True, "redis", revision)
        assert _reads("grpc") == before + 1, "a stale state is answered by the status service"
        revision = await real_status.ingest(S.StateChange(queue_upserted=S.Queue(name="sales", completed=1)))
        assert await app.state.status_mirror.wait_fresh(revision, 5)
        assert (await client.get(f"{API}/snapshot")).json()["meta"]["stale"] is False


@pytest.mark.parametrize("stale_after", [ROOMY_STALE_AFTER])
async def test_no_answer_comes_from_a_dead_watch_and_the_watch_comes_back(
    real_status: RealStatus, status_settings: StatusSettings, others: dict[str, str], stale_after: float
) -> None:
    app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after))
    async for client in client_for(app):
        mirror: StatusMirror = app.state.status_mirror
        revision = await real_status.ingest(S.StateChange(queue_upserted=S.Queue(name="sales")))
        assert await mirror.wait_fresh(revision, 5)
        assert (await client.get(f"{API}/snapshot")).status_code == 200
        await real_status.server.stop()
        await wait_until(_no_view(mirror), within=10, what="the lost watch drops the mirror")
        gone = await client.get(f"{API}/snapshot")
        assert gone.status_code == 503
        assert gone.json()["error"]["code"] == "UNAVAILABLE"

        real_status.server = await _serve_status(status_settings, real_status.address)  # same address, same Redis
        async with asyncio.timeout(10):
            await real_status.channel.channel_ready()

        async def reconnected(mirror: StatusMirror = mirror) -> bool:
            # Ingested again each round: the mirror is fresh only while the last ingest is under
            # stale_after old, and a loaded machine may take longer than that to reconnect.
            revision = await real_status.ingest(S.StateChange(queue_upserted=S.Queue(name="support")))
            return await mirror.wait_fresh(revision, 1)

        await wait_until(reconnected, within=20, what="the watch reconnects")
        before = _reads("mirror")
        back = (await client.get(f"{API}/queues")).json()
        assert [q["name"] for q in back["data"]] == ["sales", "support"]
        assert _reads("mirror") == before + 1


@pytest.mark.parametrize("stale_after", [ROOMY_STALE_AFTER])
async def test_a_mirror_answer_keeps_the_route_in_the_http_metrics(
    real_status: RealStatus, others: dict[str, str], stale_after: float
) -> None:
    app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after))
    async for client in client_for(app):
        revision = await real_status.ingest(S.StateChange(queue_upserted=S.Queue(name="sales")))
        assert await app.state.status_mirror.wait_fresh(revision, 5)
        labels = {"method": "GET", "route": f"{API}/snapshot", "status": "200"}
        before = REGISTRY.get_sample_value("switchboard_gateway_http_requests_total", labels) or 0.0
        mirror_before = _reads("mirror")
        response = await client.get(f"{API}/snapshot")
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)
        assert _reads("mirror") == mirror_before + 1
        assert REGISTRY.get_sample_value("switchboard_gateway_http_requests_total", labels) == before + 1


@pytest.mark.parametrize("stale_after", [ROOMY_STALE_AFTER])
async def test_while_redis_is_down_the_database_answers_not_the_mirror(
    real_status: RealStatus, redis_server: RedisServer, others: dict[str, str], stale_after: float
) -> None:
    app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after))
    async for client in client_for(app):
        mirror: StatusMirror = app.state.status_mirror
        revision = await real_status.ingest(S.StateChange(operator_upserted=operator("sales", "PJSIP/1", "A")))
        assert await mirror.wait_fresh(revision, 5)
        redis_server.stop()
        await wait_until(
            lambda: app.state.status_mirror.view() is None, within=5, what="the probe sees the database answering"
        )
        fallback = (await client.get(f"{API}/snapshot")).json()["meta"]
        assert (fallback["source"], fallback["stale"]) == ("database", True)

        redis_server.start()  # empty again: the ingest's resync brings the truth back
        revision = await real_status.ingest(S.StateChange(operator_upserted=operator("sales", "PJSIP/2", "B")))
        assert await mirror.wait_fresh(revision, 15)
        before = _reads("mirror")
        back_body = (await client.get(f"{API}/snapshot")).json()
        back = {**back_body["data"], **back_body["meta"]}
        assert _reads("mirror") == before + 1
        assert (back["source"], back["stale"], back["revision"]) == ("redis", False, revision)
        assert [o["memberId"] for o in back["operators"]] == ["PJSIP/2"]


@pytest.mark.parametrize("stale_after", [ROOMY_STALE_AFTER])
async def test_a_mirror_answer_continues_the_callers_trace(
    real_status: RealStatus, others: dict[str, str], stale_after: float
) -> None:
    exporter = InMemorySpanExporter()
    provider = SdkTracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after), tracer_provider=provider)
    async for client in client_for(app):
        revision = await real_status.ingest(S.StateChange(queue_upserted=S.Queue(name="sales")))
        assert await app.state.status_mirror.wait_fresh(revision, 5)
        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        before = _reads("mirror")
        response = await client.get(f"{API}/snapshot", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert response.status_code == 200
        assert _reads("mirror") == before + 1
    [span] = [s for s in exporter.get_finished_spans() if s.name == f"GET {API}/snapshot"]
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == parent_id
    assert span.attributes is not None
    assert span.attributes.get("http.status_code") == 200


async def test_a_clear_through_the_gateway_is_read_back(real_status: RealStatus, others: dict[str, str]) -> None:
    app = create_app(_settings(real_status, others, mirror=True))
    async for client in client_for(app):
        revision = await real_status.ingest(S.StateChange(operator_upserted=operator("sales", "PJSIP/1", "A")))
        assert await app.state.status_mirror.wait_fresh(revision, 5)
        assert (await client.delete(f"{API}/clear")).status_code == 200
        assert (await client.get(f"{API}/operators")).json()["meta"]["count"] == 0


READ_PATHS = (
    "/operators",
    "/operators?status=idle",
    "/operators/queue/sales",
    "/operators/PJSIP/1",
    "/queues",
    "/queues/sales",
    "/channels",
    "/snapshot",
)
READ_METHODS = ("ListOperators", "GetOperator", "ListQueues", "GetQueue", "ListChannels", "GetSnapshot")


def _status_calls() -> float:
    """Unary read calls the status service has started (from anyone: here only the gateway)."""
    labels = {"grpc_service": "switchboard.status.v1.StatusService", "grpc_type": "unary"}
    return sum(
        REGISTRY.get_sample_value("grpc_server_started_total", {**labels, "grpc_method": method}) or 0.0
        for method in READ_METHODS
    )


async def _center(status: RealStatus) -> int:
    return await status.ingest(
        S.StateChange(queue_upserted=S.Queue(name="sales")),
        S.StateChange(operator_upserted=operator("sales", "PJSIP/1", "A")),
    )


@pytest.mark.parametrize("stale_after", [ROOMY_STALE_AFTER])
async def test_each_read_answers_from_the_fresh_mirror_then_by_one_grpc_call_once_stale(
    real_status: RealStatus, others: dict[str, str], stale_after: float
) -> None:
    app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after))
    async for client in client_for(app):
        mirror: StatusMirror = app.state.status_mirror
        for path in READ_PATHS:
            assert await mirror.wait_fresh(await _center(real_status), 5)  # fresh well within stale_after
            mirror_before, grpc_before, calls_before = _reads("mirror"), _reads("grpc"), _status_calls()
            assert (await client.get(API + path)).status_code == 200, path
            assert (_reads("mirror"), _reads("grpc")) == (mirror_before + 1, grpc_before), path
            assert _status_calls() == calls_before, f"{path}: no gRPC call"
        await wait_until(
            lambda: app.state.status_mirror.view() is None,
            within=stale_after + 10,
            what="the quiet ingest turns the state stale",
        )
        for path in READ_PATHS:
            mirror_before, grpc_before, calls_before = _reads("mirror"), _reads("grpc"), _status_calls()
            answer = (await client.get(API + path)).json()
            meta = answer["meta"]
            assert (meta["source"], meta["stale"]) == ("redis", True), path
            assert (_reads("mirror"), _reads("grpc")) == (mirror_before, grpc_before + 1), path
            assert _status_calls() == calls_before + 1, f"{path}: one gRPC call"


async def test_each_read_goes_to_the_status_service_once_the_watch_is_lost(
    real_status: RealStatus, others: dict[str, str]
) -> None:
    app = create_app(_settings(real_status, others, mirror=True))
    async for client in client_for(app):
        mirror: StatusMirror = app.state.status_mirror
        assert await mirror.wait_fresh(await _center(real_status), 5)
        await real_status.server.stop()
        await wait_until(
            lambda: app.state.status_mirror.view() is None, within=5, what="the lost watch drops the mirror"
        )
        for path in READ_PATHS:
            grpc_before = _reads("grpc")
            response = await client.get(API + path)
            assert (response.status_code, response.json()["error"]["code"]) == (503, "UNAVAILABLE"), path
            assert _reads("grpc") == grpc_before + 1, path


@pytest.mark.parametrize("stale_after", [STEADY])
async def test_the_mirror_stays_fresh_on_the_watchs_heartbeats_without_polling(
    real_status: RealStatus, others: dict[str, str], stale_after: float
) -> None:
    app = create_app(_settings(real_status, others, mirror=True, stale_after=stale_after))
    async for client in client_for(app):
        mirror: StatusMirror = app.state.status_mirror
        revision = await _center(real_status)
        assert await mirror.wait_fresh(revision, 5)
        calls_before = _status_calls()
        for _ in range(5):  # each wait needs a freshness event sent after it began: heartbeats
            assert await mirror.wait_fresh(revision, 5)
        assert mirror.view() is not None
        assert _status_calls() == calls_before, "freshness came on the watch, not by polling"
        assert (await client.get(f"{API}/snapshot")).json()["meta"]["stale"] is False


@pytest.mark.parametrize("callers", [0, 1, 3])
def test_waiting_is_computed_at_read_time_like_the_status_service(callers: int) -> None:
    now = time.time()
    queue = S.Queue(
        name="q",
        callers=[S.Caller(channel=f"c{i}", position=i + 1, waiting_since=now - 10 * (i + 1)) for i in range(callers)],
    )
    state = JsonReadState(S.Snapshot(queues=[queue]))
    assert orjson.loads(state.queue_encoded("q", now + 5) or b"null") == queue_json(queue_view(queue, now + 5))
    assert orjson.loads(state.queues_json(now + 5)) == [queue_json(queue_view(queue, now + 5))]


async def test_the_mirror_is_closed_with_the_app(real_status: RealStatus, others: dict[str, str]) -> None:
    app = create_app(_settings(real_status, others, mirror=True))
    async for client in client_for(app):
        assert (await client.get("/healthz")).status_code == 200
        assert isinstance(app.state.status_mirror, StatusMirror)
    assert app.state.status_mirror is None


def _watching(mirror: StatusMirror) -> Callable[[], bool]:
    """A check: the mirror's watch has delivered its snapshot."""
    return lambda: mirror.state is not None


def _logged(logs: list[MutableMapping[str, Any]], start: str) -> Callable[[], bool]:
    return lambda: any(str(e["event"]).startswith(start) for e in logs)


async def test_a_status_service_still_starting_is_waited_for_at_info_and_a_lost_watch_is_a_warning(
    status_settings: StatusSettings, others: dict[str, str]
) -> None:
    app = create_app(GatewaySettings(status_addr=status_settings.status_addr, gateway_status_mirror=True, **others))  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        async for _ in client_for(app):
            mirror: StatusMirror = app.state.status_mirror
            await wait_until(_logged(logs, "waiting for the status service's watch"), within=10, what="waiting log")
            server = await _serve_status(status_settings, status_settings.status_addr)
            try:
                await wait_until(_watching(mirror), within=20, what="the watch goes live")
            finally:
                await server.stop()
            await wait_until(_logged(logs, "status watch lost"), within=10, what="lost log")
    waiting = [e for e in logs if str(e["event"]).startswith("waiting for the status service's watch")]
    lost = [e for e in logs if str(e["event"]).startswith("status watch lost")]
    assert {e["log_level"] for e in waiting} == {"info"}
    assert {e["log_level"] for e in lost} == {"warning"}
    assert logs.index(waiting[-1]) < logs.index(lost[0])
