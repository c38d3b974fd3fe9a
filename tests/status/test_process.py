"""``python -m services.status`` as an operator runs it: migrates, serves, reports health, stops on SIGTERM."""

from __future__ import annotations

from pathlib import Path

from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import SpawnService, health_status
from devsupport.status_batches import batch, op_up
from devsupport.status_leases import lease_token

SERVICE = "switchboard.status.v1.StatusService"


def test_the_service_process_serves_and_stops_cleanly(spawn: SpawnService, redis_url: str, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    process = spawn(
        "services.status",
        env={"STATUS_ADDR": address, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "INFO"},
    )
    process.wait_serving(address, SERVICE)
    assert (tmp_path / "switchboard.db").exists()  # migrated at start (SQLite default under DATA_DIR)
    with sync_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        token = lease_token(redis_url)
        acks = list(stub.Ingest(iter([batch(op_up("sales", "PJSIP/1"), token=token)]), timeout=10))
        assert acks[0].revision >= 1
        snapshot = stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
        assert [o.member_id for o in snapshot.operators] == ["PJSIP/1"]
        assert snapshot.source == status_pb2.SOURCE_REDIS
    assert health_status(address, SERVICE) == "SERVING"
    assert process.stop() == 0
    assert "server stopped" in process.output()
