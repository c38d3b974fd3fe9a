"""Real processes for the ingest tests: an AMI simulator, a status service and ingest replicas,
each started the way an operator does (``python -m ...``) on free loopback ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port, is_listening
from devsupport.procs import ProcessExited, ServiceProcess, SpawnService
from devsupport.waiting import wait_until_blocking

STATUS_SERVICE = "switchboard.status.v1.StatusService"
INGEST_SERVICE = "switchboard.ingest.v1.IngestControl"
AMI_USER = "wallboard"
AMI_SECRET = "s3cret-not-default"
STATES = ingest_pb2.ConnectionState


@dataclass
class Ingest:
    process: ServiceProcess
    address: str

    def status(self) -> ingest_pb2.IngestStatus:
        with sync_channel(self.address) as channel:
            return ingest_pb2_grpc.IngestControlStub(channel).GetIngestStatus(
                ingest_pb2.GetIngestStatusRequest(), timeout=2
            )

    def live_leader(self) -> ingest_pb2.IngestStatus | None:
        """Its status once it leads, has resynced and has applied events; else None."""
        reply = self.status()
        live = reply.is_leader and reply.state == STATES.CONNECTION_STATE_LIVE and reply.events_total > 0
        return reply if live else None


@dataclass
class Cluster:
    """Starts the processes of one live-status deployment; the ``spawn`` fixture cleans up."""

    spawn: SpawnService
    redis_url: str
    data_dir: Path
    status_addr: str = ""
    ami_port: int = 0

    def start_simulator(self, *, speed: float = 20.0, seed: int = 7) -> ServiceProcess:
        self.ami_port = free_port()
        args = ["--port", str(self.ami_port), "--speed", str(speed), "--seed", str(seed)]
        args += ["--calls-per-minute", "30", "--username", AMI_USER, "--secret", AMI_SECRET]
        process = self.spawn("services.ami_ingest.simulator", *args)

        def listening() -> bool:
            if process.poll() is not None:
                raise ProcessExited(f"simulator exited with {process.returncode}\n{process.output()}")
            return is_listening(self.ami_port)

        wait_until_blocking(listening, within=15, what="the simulator listens")
        return process

    def start_status(self) -> ServiceProcess:
        self.status_addr = f"127.0.0.1:{free_port()}"
        env = {
            "STATUS_ADDR": self.status_addr,
            "REDIS_URL": self.redis_url,
            "DATA_DIR": str(self.data_dir),
            "METRICS_PORT": "-1",
            "LOG_LEVEL": "WARNING",
            "AMI_INGEST_ADDR": f"127.0.0.1:{free_port()}",
        }
        process = self.spawn("services.status", env=env)
        process.wait_serving(self.status_addr, STATUS_SERVICE, timeout=30)
        return process

    def start_ingest(self, *, lease_ms: int = 1500, poll_seconds: float = 0.2, wait: bool = True) -> Ingest:
        address = f"127.0.0.1:{free_port()}"
        env = {
            "REDIS_URL": self.redis_url,
            "STATUS_ADDR": self.status_addr,
            "AMI_HOST": "127.0.0.1",
            "AMI_PORT": str(self.ami_port),
            "AMI_AUTH": "md5",
            "AMI_USERNAME": AMI_USER,
            "AMI_SECRET": AMI_SECRET,
            "AMI_INGEST_ADDR": address,
            "INGEST_LEASE_MS": str(lease_ms),
            "INGEST_POLL_SECONDS": str(poll_seconds),
            "INGEST_HEARTBEAT_SECONDS": "0.5",
            "METRICS_PORT": "-1",
            "LOG_LEVEL": "INFO",
        }
        ingest = Ingest(self.spawn("services.ami_ingest", env=env), address)
        if wait:
            ingest.process.wait_serving(address, INGEST_SERVICE, timeout=30)
        return ingest

    def snapshot(self) -> status_pb2.Snapshot:
        with sync_channel(self.status_addr) as channel:
            return status_pb2_grpc.StatusServiceStub(channel).GetSnapshot(status_pb2.GetSnapshotRequest(), timeout=5)


def picture(snapshot: status_pb2.Snapshot) -> tuple[object, ...]:
    """What a wall screen shows, without timestamps: two equal pictures mean nothing changed."""
    operators = sorted((o.queue_name, o.member_id, o.status_code, o.paused, o.in_call) for o in snapshot.operators)
    queues = sorted((q.name, tuple(c.channel for c in q.callers), q.completed, q.abandoned) for q in snapshot.queues)
    channels = sorted((c.channel_name, c.state, c.bridged_to) for c in snapshot.channels)
    return tuple(operators), tuple(queues), tuple(channels)
