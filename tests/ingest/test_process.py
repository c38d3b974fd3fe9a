"""``python -m services.ami_ingest`` as an operator runs it: against a simulated Asterisk and a
real status service it leads, goes live, fills the status snapshot, and on SIGTERM exits 0 and
hands its lease back so another replica leads at once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import redis
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from switchboard.status.v1 import status_pb2

from devsupport.auth import sync_channel
from devsupport.procs import SpawnService, health_status
from devsupport.waiting import wait_until_blocking
from services.ami_ingest import keys
from services.ami_ingest.simulator.callcenter import QUEUES
from tests.ingest._process_support import INGEST_SERVICE, STATES, Cluster

OPERATORS = sum(len(members) for _, members in QUEUES.values())


def reflected_services(address: str) -> set[str]:
    with sync_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
    return {service.name for service in reply.list_services_response.service}


@pytest.mark.timeout(60)
def test_the_ingest_process_goes_live_fills_the_status_and_hands_its_lease_back_on_sigterm(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(spawn, redis_url, tmp_path)
    cluster.start_simulator()
    cluster.start_status()
    # A long lease: if SIGTERM did not hand it back, the next replica would wait a minute.
    first = cluster.start_ingest(lease_ms=60_000)

    assert INGEST_SERVICE in reflected_services(first.address)
    assert health_status(first.address, INGEST_SERVICE) == "SERVING"
    live = wait_until_blocking(first.live_leader, within=15, what="the only replica leads and is LIVE")
    assert live.fencing_token > 0
    assert live.source_id == f"127.0.0.1:{cluster.ami_port}"
    assert live.resyncs_total >= 1
    assert live.last_error == ""
    wait_until_blocking(lambda: first.status().events_total > live.events_total, within=10, what="events keep flowing")

    def full_snapshot() -> status_pb2.Snapshot | None:
        snapshot = cluster.snapshot()
        return snapshot if len(snapshot.operators) == OPERATORS else None

    snapshot = wait_until_blocking(full_snapshot, within=10, what="the status snapshot holds every simulated operator")
    assert {o.queue_name for o in snapshot.operators} == set(QUEUES)
    assert {o.member_name for o in snapshot.operators} >= {"Alice Smith", "Мария Иванова"}
    assert not snapshot.stale

    assert first.process.stop(signal.SIGTERM, timeout=5) == 0, first.process.output()
    lease = redis.Redis.from_url(redis_url)
    try:
        assert lease.get(keys.leader_key(live.source_id)) is None, "the lease is handed back on SIGTERM"
    finally:
        lease.close()

    second = cluster.start_ingest(lease_ms=60_000)
    # The lease lasts 60 s: leading within 10 s proves the handed-back lease was not waited out.
    after = wait_until_blocking(second.live_leader, within=10, what="the next replica leads without waiting for expiry")
    assert after.fencing_token > live.fencing_token
    assert after.state == STATES.CONNECTION_STATE_LIVE
