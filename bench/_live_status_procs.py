"""Processes of the live-status benchmarks: status service, ami_ingest, AMI servers (loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from tests.support.ports import free_port
from tests.support.procs import ProcessExited, ServiceProcess

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
        yield address
        process.stop()


@contextmanager
def module_process(module: str, *args: str, ready_text: str = "", timeout: float = 15.0) -> Iterator[ServiceProcess]:
    """``python -m module args``; with ``ready_text``, wait until its output says it."""
    with ServiceProcess.module(module, *args) as process:
        deadline = time.monotonic() + timeout
        while ready_text and ready_text not in process.stderr + process.stdout:
            if process.poll() is not None:
                raise ProcessExited(f"{module} exited with {process.returncode}\n{process.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{module} not ready after {timeout}s\n{process.output()}")
            time.sleep(0.02)
        yield process
        process.stop()


def ingest_status(address: str) -> ingest_pb2.IngestStatus:
    with grpc.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestControlStub(channel)
        return stub.GetIngestStatus(ingest_pb2.GetIngestStatusRequest(), timeout=5)


def snapshot(address: str) -> status_pb2.Snapshot:
    with grpc.insecure_channel(address) as channel:
        return status_pb2_grpc.StatusServiceStub(channel).GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)


def wait_live(address: str, timeout: float = 20.0) -> ingest_pb2.IngestStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = ingest_status(address)
        if reply.state == ingest_pb2.CONNECTION_STATE_LIVE:
            return reply
        time.sleep(0.01)
    raise TimeoutError(f"ingest at {address} not LIVE after {timeout}s")
