"""``GRPC_PROCESSES=2 python -m services.status``: two replica processes on one port.

Each worker follows the Redis stream on its own, so a batch ingested through one connection
(one worker) is answered by every worker. Which worker answers a connection is the kernel's
choice (SO_REUSEPORT hashes connections): the test opens fresh connections until it has seen,
in /proc, each worker holding one of them.
"""

from __future__ import annotations

from pathlib import Path

import grpc
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import SpawnService, descendants, health_status, is_alive
from devsupport.status_batches import batch, op_up
from devsupport.status_leases import lease_token
from devsupport.waiting import wait_until_blocking

SERVICE = "switchboard.status.v1.StatusService"
# A channel of its own TCP connection: grpc shares one per target between channels otherwise.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
TCP_ESTABLISHED = "01"


def established_connections(pid: int, port: int) -> int:
    """Established TCP connections to local ``port`` whose socket belongs to process ``pid``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == TCP_ESTABLISHED and fields[9] in inodes:
                count += 1
    return count


def read_until(stub: status_pb2_grpc.StatusServiceStub, members: list[str], timeout: float = 10.0) -> list[str]:
    """The snapshot's member ids once they equal ``members`` (a replica may be a stream read behind)."""

    def members_read() -> list[str] | None:
        snapshot = stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)
        seen = [o.member_id for o in snapshot.operators]
        return seen if seen == members else None

    return wait_until_blocking(members_read, within=timeout, what=f"a snapshot with members {members}", interval=0.02)


def test_two_processes_share_the_port_and_each_answers_with_what_the_other_ingested(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = spawn(
        "services.status",
        env={"STATUS_ADDR": address, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path), "GRPC_PROCESSES": "2"},
    )
    process.wait_serving(address, SERVICE, timeout=30)

    def both_started() -> bool:
        assert process.poll() is None, process.output()
        return process.stdout.count('"server started"') >= 2

    wait_until_blocking(both_started, within=20, what="both worker processes started", detail=process.output)
    workers = descendants(process.pid)
    assert len(workers) == 2, process.output()
    assert process.stdout.count("Running upgrade  -> 0001") == 1, process.output()  # migrated once, by the supervisor

    with sync_channel(address, options=OWN_CONNECTION) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        token = lease_token(redis_url)
        changes = (op_up("sales", "PJSIP/1"), op_up("support", "PJSIP/2"))
        acks = list(stub.Ingest(iter([batch(*changes, token=token)]), timeout=10))
        assert acks
        assert acks[-1].revision >= 1

    answered_by: dict[int, int] = {}
    channels: list[grpc.Channel] = []
    try:
        while len(channels) < 40 and (len(channels) < 4 or len(answered_by) < len(workers)):
            channel = sync_channel(address, options=OWN_CONNECTION)
            channels.append(channel)
            seen = read_until(status_pb2_grpc.StatusServiceStub(channel), ["PJSIP/1", "PJSIP/2"])
            assert seen == ["PJSIP/1", "PJSIP/2"], f"read {len(channels)}: {seen}"
            answered_by = {pid: n for pid in workers if (n := established_connections(pid, port))}
        assert set(answered_by) == workers, (answered_by, workers)
    finally:
        for channel in channels:
            channel.close()

    assert health_status(address, SERVICE) == "SERVING"
    # Exit 0 with both workers' "server stopped" means each drained and exited on its own, not
    # killed at the supervisor's budget; how long that takes is a benchmark's concern, not a test's.
    assert process.stop(timeout=10) == 0, process.output()
    assert not any(is_alive(pid) for pid in workers)
    assert process.stdout.count('"server stopped"') == 2, process.output()


def test_without_grpc_processes_a_second_process_on_the_same_port_fails_loudly(
    spawn: SpawnService, redis_url: str, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {"STATUS_ADDR": address, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path)}
    first = spawn("services.status", env=env)
    first.wait_serving(address, SERVICE)

    second = spawn("services.status", env=env)
    assert second.wait_exit(timeout=20) == 1, second.output()
    assert "service crashed" in second.stdout
    assert "bind" in second.output().lower()
    assert health_status(address, SERVICE) == "SERVING"
    assert first.stop() == 0
