"""The gateway through the REAL status service (in-process gRPC server) on a real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio
import httpx
import pytest
from redis.asyncio import Redis
from switchboard.status.v1 import status_pb2 as S
from switchboard.status.v1 import status_pb2_grpc

from devsupport.auth import aio_channel, authenticator_for_tests
from devsupport.ports import free_port, on_any_port
from devsupport.status_leases import take_lease
from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import BACKEND_NAMES, GatewaySettings
from runtime.grpc_server import GrpcServer
from services.status.app import create_app as create_status_app
from services.status.settings import StatusSettings
from tests.gateway.conventions import check_against_openapi, convention_breaks
from tests.gateway.fake_status import GrpcBackend, operator, start_backend
from tests.gateway.harness import client_for, live_stream
from tests.gateway.sse import events

API = "/api/queue-status"


class RealStatus:
    def __init__(self, address: str, server: GrpcServer, channel: grpc.aio.Channel, redis: Redis) -> None:
        self.address = address
        self.redis = redis
        self.server = server
        self.channel = channel
        self.stub = status_pb2_grpc.StatusServiceStub(channel)
        self.sequence = 0

    async def ingest(self, *changes: S.StateChange) -> int:
        self.sequence += 1
        token = await take_lease(self.redis, "pbx1")
        batch = S.IngestBatch(
            source_id="pbx1", fencing_token=token, sequence=self.sequence, changes=changes, emitted_at=time.time()
        )
        acks = [ack async for ack in self.stub.Ingest(iter([batch]), timeout=10)]
        return acks[-1].revision


@pytest.fixture
async def real_status(redis_url: str, tmp_path: Path) -> AsyncIterator[RealStatus]:
    settings = StatusSettings(
        redis_url=redis_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'status.db'}",
        ami_ingest_addr=f"127.0.0.1:{free_port()}",
        status_resync_timeout_seconds=0.3,
        log_level="WARNING",
    )
    app = await create_status_app(settings)
    await app.start()
    server = GrpcServer(
        on_any_port(app.grpc_service()),
        authenticator=authenticator_for_tests(),
        grace_seconds=0.2,
        health_interval_seconds=0.2,
    )
    port = await server.start()
    channel = aio_channel(f"127.0.0.1:{port}")
    try:
        yield RealStatus(f"127.0.0.1:{port}", server, channel, app.redis)
    finally:
        await channel.close()
        await server.stop()


@pytest.fixture
async def gateway_settings(real_status: RealStatus) -> AsyncIterator[GatewaySettings]:
    others: dict[str, GrpcBackend] = {name: await start_backend() for name in BACKEND_NAMES if name != "status"}
    addresses = {f"{name}_addr": backend.address for name, backend in others.items()}
    try:
        yield GatewaySettings(
            status_addr=real_status.address,
            readiness_timeout_seconds=1.0,
            sse_ping_seconds=1.0,
            **addresses,  # type: ignore[arg-type]
        )
    finally:
        for backend in others.values():
            await backend.stop()


async def _seed(status: RealStatus) -> None:
    now = time.time()
    await status.ingest(
        S.StateChange(
            queue_upserted=S.Queue(
                name="sales",
                strategy="ringall",
                waiting=1,
                callers=[S.Caller(channel="Local/2002@callers;2", caller_id_num="5550002", position=1,
                                  waiting_since=now - 30, unique_id="1700000000.2")],
            )
        ),
        S.StateChange(queue_upserted=S.Queue(name="support", strategy="leastrecent")),
        S.StateChange(operator_upserted=operator("sales", "Local/1001@agents", "Алиса")),
        S.StateChange(operator_upserted=operator("support", "Local/1001@agents", "Алиса", paused=True,
                                                 paused_reason="Lunch")),
        S.StateChange(operator_upserted=operator("sales", "PJSIP/1002", "Bob", status=S.MEMBER_STATUS_IN_USE,
                                                 status_code=2, in_call=True)),
        S.StateChange(channel_upserted=S.Channel(channel_name="PJSIP/1002-0001", unique_id="1700000000.1",
                                                 linked_id="1700000000.1", state="Up", started_at=now - 60)),
    )  # fmt: skip


async def test_reads_through_the_real_status_service(
    real_status: RealStatus, gateway_settings: GatewaySettings
) -> None:
    await _seed(real_status)
    async for client in client_for(create_app(gateway_settings)):
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text

        body = (await client.get(f"{API}/snapshot")).json()
        snapshot = body["data"]
        assert body["meta"]["source"] == "redis"
        assert body["meta"]["stale"] is False
        rows = {(o["queueName"], o["memberId"]): o for o in snapshot["operators"]}
        assert set(rows) == {("sales", "Local/1001@agents"), ("support", "Local/1001@agents"), ("sales", "PJSIP/1002")}
        assert rows[("support", "Local/1001@agents")]["pausedReason"] == "Lunch"
        assert rows[("sales", "PJSIP/1002")]["status"] == "in_use"
        sales = next(q for q in snapshot["queues"] if q["name"] == "sales")
        assert sales["waiting"] == 1
        assert sales["callers"][0]["callerIdNum"] == "5550002"
        assert sales["longestWaitMs"] >= 29_000
        assert snapshot["channels"][0]["uniqueId"] == "1700000000.1"

        member = await client.get(f"{API}/operators/Local/1001@agents")
        assert member.status_code == 200, member.text
        assert {o["queueName"] for o in member.json()["data"]} == {"sales", "support"}

        in_use = (await client.get(f"{API}/operators", params={"status": "in_use"})).json()
        assert [o["memberId"] for o in in_use["data"]] == ["PJSIP/1002"]
        paused = (await client.get(f"{API}/operators", params={"paused": "true"})).json()
        assert [(o["queueName"], o["memberId"]) for o in paused["data"]] == [("support", "Local/1001@agents")]

        missing = await client.get(f"{API}/operators/PJSIP/9999")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"

        sync = (await client.get(f"{API}/sync/status")).json()["data"]
        assert (sync["redisOperators"], sync["redisQueues"], sync["redisChannels"]) == (3, 2, 1)
        assert sync["redisAvailable"] is True


async def test_stream_through_the_real_status_service(
    real_status: RealStatus, gateway_settings: GatewaySettings
) -> None:
    await _seed(real_status)
    async with live_stream(create_app(gateway_settings), f"{API}/stream") as (_, response):
        stream = events(response)
        first = await anext(stream)
        assert first.event == "snapshot"
        assert len(first.json()["operators"]) == 3
        revision = await real_status.ingest(
            S.StateChange(operator_upserted=operator("sales", "PJSIP/1002", "Bob", paused=True, paused_reason="Break"))
        )
        change = await anext(stream)
        while change.event != "changes":
            change = await anext(stream)
        body = change.json()
        assert body["revision"] == revision
        assert body["changes"][0]["operator"]["pausedReason"] == "Break"


async def test_the_stream_of_an_unknown_queue_is_404_at_once_naming_it(
    real_status: RealStatus, gateway_settings: GatewaySettings
) -> None:
    await _seed(real_status)
    params = {"queue": ["sales", "nope"]}
    async with live_stream(create_app(gateway_settings), f"{API}/stream", params) as (_, response):
        assert response.status_code == 404
        body = (await response.aread()).decode()
    error = httpx.Response(404, content=body).json()["error"]
    assert (error["code"], error["details"]) == ("NOT_FOUND", {"reason": "NotFound", "queue": "nope"})


@pytest.mark.parametrize("mirror", [True, False], ids=["mirror", "grpc"])
async def test_every_read_through_the_real_status_service_validates_against_the_published_schemas(
    real_status: RealStatus, gateway_settings: GatewaySettings, mirror: bool
) -> None:
    await _seed(real_status)
    settings = gateway_settings.model_copy(update={"gateway_status_mirror": mirror})
    reads = [
        ("/snapshot", "/snapshot", 200),
        ("/operators?queue=sales", "/operators", 200),
        ("/operators/queue/support", "/operators/queue/{queue}", 200),
        ("/operators/queue/nope", "/operators/queue/{queue}", 404),
        ("/operators/Local/1001@agents", "/operators/{memberId}", 200),
        ("/queues", "/queues", 200),
        ("/queues/sales", "/queues/{name}", 200),
        ("/queues/nope", "/queues/{name}", 404),
        ("/channels", "/channels", 200),
        ("/sync/status", "/sync/status", 200),
    ]
    app = create_app(settings)
    async for client in client_for(app):
        spec = (await client.get("/openapi.json")).json()
        if mirror:  # the reads below then come from the mirror (without it, each is a gRPC call)
            await wait_until(lambda: app.state.status_mirror.view(), within=10, what="the gateway's status mirror")
        for path, template, status in reads:
            response = await client.get(API + path)
            assert response.status_code == status, (path, response.text)
            check_against_openapi(spec, "get", API + template, status, response.json())
            assert convention_breaks(response.json()) == [], path
