"""Processes of the live-status benchmarks: status service, ami_ingest, AMI servers (loopback)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import ProcessExited, ServiceProcess
from devsupport.waiting import wait_until_blocking

STATUS_SERVICE = "switchboard.status.v1.StatusService"
INGEST_SERVICE = "switchboard.ingest.v1.IngestControl"
QUIET = {"LOG_LEVEL": "WARNING", "METRICS_PORT": "-1"}


@contextmanager
def status_process(redis_url: str, data_dir: Path) -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    env = {"STATUS_ADDR": address, "REDIS_URL": redis_url, "DATA_DIR": str(data_dir), **QUIET}
    with ServiceProcess.module("services.status", env=env) as process:
        process.wait_serving(address, STATUS_SERVICE, timeout=30)
        yield address
        process.stop()


@contextmanager
def ingest_process(
    redis_url: str, status_addr: str, ami_port: int, username: str, secret: str, *, auth: str = "plain"
) -> Iterator[str]:
    with ingest_service(redis_url, status_addr, ami_port, username, secret, auth=auth) as (address, _pid):
        yield address


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process ``pid`` has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def ingest_service(
    redis_url: str, status_addr: str, ami_port: int, username: str, secret: str, *, auth: str = "plain"
) -> Iterator[tuple[str, int]]:
    """:func:`ingest_process`, yielding its address and process id."""
    address = f"127.0.0.1:{free_port()}"
    env = {
        "REDIS_URL": redis_url,
        "STATUS_ADDR": status_addr,
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": str(ami_port),
        "AMI_AUTH": auth,
        "AMI_USERNAME": username,
        "AMI_SECRET": secret,
        "AMI_INGEST_ADDR": address,
        "INGEST_POLL_SECONDS": "0.1",
        # No heartbeat batch during a run: the status' last_ingest_at is then the last real batch.
        "INGEST_HEARTBEAT_SECONDS": "120",
        **QUIET,
    }
    with ServiceProcess.module("services.ami_ingest", env=env) as process:
        process.wait_serving(address, INGEST_SERVICE, timeout=30)
        yield address, process.pid
        process.stop()


@contextmanager
def module_process(module: str, *args: str, ready_text: str = "", timeout: float = 15.0) -> Iterator[ServiceProcess]:
    """``python -m module args``; with ``ready_text``, wait until its output says it."""
    with ServiceProcess.module(module, *args) as process:

        def ready() -> bool:
            if process.poll() is not None:
                raise ProcessExited(f"{module} exited with {process.returncode}\n{process.output()}")
            return ready_text in process.stderr + process.stdout

        if ready_text:
            what = f"{module} says {ready_text!r}"
            wait_until_blocking(ready, within=timeout, what=what, interval=0.02, detail=process.output)
        yield process
        process.stop()


def ingest_status(address: str) -> ingest_pb2.IngestStatus:
    with sync_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestControlStub(channel)
        return stub.GetIngestStatus(ingest_pb2.GetIngestStatusRequest(), timeout=5)


def wait_ingest_settled(address: str, *, quiet_s: float, interval_s: float, within_s: float) -> ingest_pb2.IngestStatus:
    """The ingest's status once its event count has not moved for ``quiet_s`` (or after ``within_s``).

    One channel for every poll, ``interval_s`` apart: a new channel per poll costs the ingest
    and this process CPU on a machine whose cores the measured processes share. Each poll may take
    seconds: an ingest busy with a burst answers between socket reads, on a loaded machine late.
    """
    with sync_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestControlStub(channel)
        deadline = time.monotonic() + within_s
        last, stable_since = -1, time.monotonic()
        while True:
            reply = stub.GetIngestStatus(ingest_pb2.GetIngestStatusRequest(), timeout=60)
            now = time.monotonic()
            if reply.events_total != last or not reply.events_total:
                last, stable_since = reply.events_total, now
            elif now - stable_since > quiet_s or now > deadline:
                return reply
            time.sleep(interval_s)


def snapshot(address: str) -> status_pb2.Snapshot:
    with sync_channel(address) as channel:
        return status_pb2_grpc.StatusServiceStub(channel).GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)


def wait_live(address: str, timeout: float = 20.0) -> ingest_pb2.IngestStatus:
    def live() -> ingest_pb2.IngestStatus | None:
        reply = ingest_status(address)
        return reply if reply.state == ingest_pb2.CONNECTION_STATE_LIVE else None

    return wait_until_blocking(live, within=timeout, what=f"ingest at {address} LIVE", interval=0.01)
