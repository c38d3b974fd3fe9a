"""The status service as the status benchmarks run it: its own process, loaded with a center.

Processes are started the way they are deployed (``python -m services.status``); the helpers
here load a center over the real Ingest RPC, wait until the database and every worker of a
``GRPC_PROCESSES`` unit followed, and read a process's CPU time from /proc.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import ServiceProcess, descendants
from devsupport.status_batches import batch, center
from devsupport.waiting import wait_until_blocking

SERVICE = "switchboard.status.v1.StatusService"
SNAPSHOT_METHOD = f"/{SERVICE}/GetSnapshot"
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
"""A channel of its own TCP connection (grpc otherwise shares one per target inside a process)."""


def start_status(env: dict[str, str], processes: int = 1) -> tuple[ServiceProcess, str]:
    address = f"127.0.0.1:{free_port()}"
    process = ServiceProcess.module(
        "services.status",
        env={
            "STATUS_ADDR": address,
            "LOG_LEVEL": "WARNING",
            "METRICS_PORT": "-1",
            "GRPC_PROCESSES": str(processes),
            **env,
        },
    )
    process.start()
    try:
        process.wait_serving(address, SERVICE, timeout=90)  # a busy 2-core machine starts 3 processes slowly
    except BaseException:
        process.close()  # not left serving (a GRPC_PROCESSES unit holds three processes) after a failed start
        raise
    return process, address


def load_center(address: str, token: int, operators: int, queues: int, channels: int) -> None:
    with sync_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        stub.Clear(status_pb2.ClearRequest(), timeout=10)
        changes = center(operators, queues, channels)
        list(stub.Ingest(iter([batch(*changes, replace_all=True, token=token)]), timeout=30))


def wait_for_database(address: str, members: int, timeout: float = 10.0) -> None:
    with sync_channel(address) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)

        def in_database() -> bool:
            return bool(stub.GetSyncStatus(status_pb2.GetSyncStatusRequest(), timeout=5).db_members == members)

        wait_until_blocking(in_database, within=timeout, what="the resync reached the database")


def wait_replicas_loaded(address: str, operators: int, connections: int = 8, timeout: float = 10.0) -> None:
    """Every worker of a GRPC_PROCESSES unit followed the load (checked over fresh connections)."""
    deadline = time.monotonic() + timeout
    for _ in range(connections):
        with sync_channel(address, options=OWN_CONNECTION) as channel:
            stub = status_pb2_grpc.StatusServiceStub(channel)
            while len(stub.GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5).operators) != operators:
                if time.monotonic() > deadline:
                    raise TimeoutError("a status worker never caught up with the load")
                time.sleep(0.05)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids(pid: int) -> list[int]:
    """The processes answering RPCs: the workers under a GRPC_PROCESSES supervisor, else ``pid``."""
    return sorted(descendants(pid)) or [pid]
