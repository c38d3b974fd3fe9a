"""The drill's suite (:mod:`scripts.drill`): two replicas of every process on one Redis, as two
pods per Deployment would run, and the dependencies they share.

Each replica has its own port and data directory, except the media processes, which share one
media directory (the ``media-data`` volume). Clients dial both replicas of a service
(``ipv4:127.0.0.1:A,127.0.0.1:B``, round_robin: what a headless Service's name gives). Redis is
started as ``make run`` starts it (append-only, fsync always), S3 is moto's server.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from devsupport.ports import free_ports
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from devsupport.s3_server import S3Server
from scripts.drill_takeover import INGEST_LEASE_MS, INGEST_POLL_SECONDS
from services.media.store import s3_client

__all__ = ["BUCKET", "KINDS", "REPLICAS", "S3_KEY", "Replica", "Suite", "dependencies"]

REPLICAS = 2
KINDS = (
    "status",
    "ami_ingest",
    "queue_admin",
    "workflow_worker",
    "media",
    "media_worker",
    "media_sync_worker",
    "notify",
    "notify_worker",
    "gateway",
)
COMMANDS = {
    "status": ("services.status",),
    "ami_ingest": ("services.ami_ingest",),
    "queue_admin": ("services.queue_admin",),
    "workflow_worker": ("services.workflow.worker",),
    "media": ("services.media",),
    "media_worker": ("services.media.worker", "processing"),
    "media_sync_worker": ("services.media.worker", "sync"),
    "notify": ("services.notify",),
    "notify_worker": ("services.notify.worker",),
    "gateway": ("gateway",),
}
GRPC_KINDS = {
    "status": "STATUS_ADDR",
    "ami_ingest": "AMI_INGEST_ADDR",
    "queue_admin": "QUEUE_ADMIN_ADDR",
    "media": "MEDIA_ADDR",
    "notify": "NOTIFY_ADDR",
}
MEDIA_KINDS = ("media", "media_worker", "media_sync_worker")
"""They share one media directory, as their pods share the media-data volume."""
BUCKET = "switchboard-drill"
S3_KEY = "drill"
READY_SECONDS = 90.0


@dataclass
class Replica:
    kind: str
    index: int
    env: dict[str, str]
    port: int
    process: ServiceProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = ServiceProcess.module(*COMMANDS[self.kind], env=self.env).start()

    def wait_ready(self) -> None:
        assert self.process is not None
        if self.kind == "gateway":
            self.process.wait_http(f"http://{self.address}/readyz", timeout=READY_SECONDS)
        elif self.kind in GRPC_KINDS:
            self.process.wait_serving(self.address, timeout=READY_SECONDS)
        else:
            self.process.wait_http(f"http://{self.address}/readyz", timeout=READY_SECONDS)


class Suite:
    """Every replica of every kind, wired to one another, the demo AMI feed and the dependencies."""

    def __init__(self, workdir: Path, redis_url: str, s3_url: str) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
        self.s3_url = s3_url
        ports = iter(free_ports(1 + REPLICAS * len(KINDS)))
        ami_port = next(ports)
        self.source_id = f"127.0.0.1:{ami_port}"
        self.replicas = {kind: [Replica(kind, i, {}, next(ports)) for i in range(REPLICAS)] for kind in KINDS}
        dial = {var: "ipv4:" + ",".join(r.address for r in self.replicas[kind]) for kind, var in GRPC_KINDS.items()}
        common = {
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'switchboard.db'}",
            "AMI_HOST": "127.0.0.1",
            "AMI_PORT": str(ami_port),
            "AMI_USERNAME": "drill",  # the demo feed accepts this login, ami_ingest presents it
            "AMI_SECRET": secrets.token_urlsafe(16),
            "INGEST_LEASE_MS": str(INGEST_LEASE_MS),
            "INGEST_POLL_SECONDS": str(INGEST_POLL_SECONDS),
            "METRICS_PORT": "-1",
            "LOG_FORMAT": "console",
            "WORKFLOW_CONCURRENCY": "4",
            "WORKFLOW_KEEP_COMPLETED": "1000000",  # every accepted job is looked up at the end
            "S3_BUCKET": BUCKET,
            "S3_ENDPOINT_URL": s3_url,
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_KEY,
            "MEDIA_PROCESSING_CONCURRENCY": "2",
            "MEDIA_PROCESSING_BACKOFF_BASE_S": "0.2",
            **dial,
        }
        for kind, replicas in self.replicas.items():
            for replica in replicas:
                shared_media = workdir / "media-data"
                own = {"DATA_DIR": str(shared_media if kind in MEDIA_KINDS else workdir / f"{kind}-{replica.index}")}
                if kind in GRPC_KINDS:
                    own[GRPC_KINDS[kind]] = replica.address
                elif kind == "gateway":
                    own["GATEWAY_PORT"] = str(replica.port)
                else:
                    own.update({"METRICS_PORT": str(replica.port), "METRICS_HOST": "127.0.0.1"})
                replica.env = {**common, **own}
        self.feed = ServiceProcess.module("services.ami_ingest.simulator", "--port", str(ami_port), env=common)
        self.redis = redis.Redis.from_url(redis_url)

    def start(self) -> None:
        """Every replica at once (each waits for what it needs itself), then each until ready."""
        self.feed.start()
        for kind in KINDS:
            for replica in self.replicas[kind]:
                replica.start()
        for kind in KINDS:
            for replica in self.replicas[kind]:
                replica.wait_ready()

    def stop(self) -> None:
        for kind in reversed(KINDS):
            for replica in self.replicas[kind]:
                if replica.process is not None:
                    replica.process.cleanup()
        self.feed.cleanup()
        self.redis.close()

    @property
    def gateways(self) -> list[str]:
        return [f"http://{r.address}" for r in self.replicas["gateway"]]


@contextlib.contextmanager
def dependencies(workdir: Path) -> Iterator[tuple[str, str]]:
    """Redis as ``make run`` starts it (append-only, fsync always: an acknowledged enqueue is on
    disk) and S3 (moto's server) with the drill's bucket: their URLs."""
    redis_server = RedisServer(data_dir=workdir / "redis", appendfsync="always")
    s3 = S3Server()
    redis_server.start()
    try:
        s3.start()
        try:
            with contextlib.closing(s3_client(s3.url, S3_KEY, S3_KEY, "us-east-1")) as client:
                client.create_bucket(Bucket=BUCKET)
            yield redis_server.url, s3.url
        finally:
            s3.close()
    finally:
        redis_server.stop()
