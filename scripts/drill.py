"""``make drill``: two replicas of every process against one Redis; kill -9 one of each in turn.

The suite runs as it would with two pods per Deployment: status, ami_ingest, queue_admin, the
workflow worker, media, the media processing and sync workers, notify, the notify worker and the
gateway twice each, on distinct ports, one Redis (append-only, fsync always, as ``make run``
starts it), one SQLite database, one media directory (the shared ``media-data`` volume) and S3
(moto's server). Clients dial both replicas of a service (``ipv4:127.0.0.1:A,127.0.0.1:B``,
round_robin: what a headless Service's name gives). Load goes through both gateways, as a
Service would spread it, with the suite's credential (:mod:`scripts.drill_load`): status reads
that reach the status service, job enqueues, in-app notifications and image uploads.

Then, for each kind in turn, one replica is killed with SIGKILL (for ami_ingest: the one holding
the lease), left dead for ``--down-seconds``, and started again; the drill goes on to the next
kind while it starts (each kind always keeps its other replica), and once every restarted
replica is ready the load runs a last calm period against all of them. The drill counts the
failed calls of each phase with their reasons (a call counts as failed in the phase it failed in,
so one in flight at a kill counts for that kill), measures how long the ingest standby took to
take over (from the kill until it held the lease, and until its first write under it) and prints
that beside its bound, lease + poll, then waits for every accepted job to complete, every
accepted notification to be delivered and every accepted upload to be ready, synced, and in the
bucket (original and every variant). It prints a JSON summary; exit status 0 when nothing
accepted was lost, the standby took over, every kind of call kept answering through every
failover and once all were back, and no call failed while every replica was up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from devsupport.ports import free_ports
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from devsupport.s3_server import S3Server
from devsupport.waiting import wait_until_blocking
from scripts.drill_load import CALLS, Load, http_json
from scripts.drill_takeover import INGEST_LEASE_MS, INGEST_POLL_SECONDS, Takeover, takeover_line, takeover_summary
from services.ami_ingest import keys as ingest_keys
from services.media.store import s3_client

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
CALM_PHASES = ("warm-up", "steady", "all back")
"""The load's phases with every replica up: no call may fail in them."""


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


class Drill:
    def __init__(self, workdir: Path, redis_url: str, s3_url: str, *, down_seconds: float, calm_seconds: float) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
        self.s3_url = s3_url
        self.down_seconds = down_seconds
        self.calm_seconds = calm_seconds
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
        self.takeover: Takeover | None = None
        self.restarted: list[Replica] = []

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

    def victim(self, kind: str) -> Replica:
        """The replica to kill: the ingest's lease holder (it logs its token), else the first replica."""
        if kind != "ami_ingest":
            return self.replicas[kind][0]
        token = self.lease_token()
        for replica in self.replicas[kind]:
            assert replica.process is not None
            if token and f"fencing_token={token}" in replica.process.stdout:
                return replica
        return self.replicas[kind][0]

    def lease_token(self) -> str:
        """The fencing token of the ingest's current lease ('' while nobody holds it)."""
        lease = self.redis.get(ingest_keys.leader_key(self.source_id))
        return lease.decode().partition("|")[2] if isinstance(lease, bytes) else ""

    def last_ingest_at(self) -> float:
        return float(http_json(f"{self.gateways[-1]}/api/queue-status/sync/status")["data"]["lastIngestAt"] or 0)

    def kill_and_restart(self, kind: str, load: Load) -> None:
        replica = self.victim(kind)
        assert replica.process is not None
        killed_token = self.lease_token()
        load.phase = f"{kind} killed"
        killed_at = time.time()
        replica.process.kill()
        if kind == "ami_ingest":
            self.takeover = self.measure_takeover(killed_token, killed_at)
        time.sleep(self.down_seconds)  # the load keeps running against the surviving replica
        load.phase = f"{kind} restarting"
        replica.start()
        self.restarted.append(replica)
        time.sleep(self.calm_seconds)

    def wait_restarted(self) -> None:
        """Every restarted replica ready again."""
        for replica in self.restarted:
            replica.wait_ready()

    def measure_takeover(self, killed_token: str, killed_at: float) -> Takeover:
        """From killing the lease holder until the standby held the lease, and until it wrote to
        the status service under it (a batch the dead leader had in flight does not count)."""
        within = INGEST_LEASE_MS / 1000 * 6 + 30
        wait_until_blocking(
            lambda: self.lease_token() not in ("", killed_token),
            within=within,
            what="the ingest standby taking the lease",
            interval=0.05,
        )
        taken_at = time.time()
        wait_until_blocking(
            lambda: self.last_ingest_at() > taken_at,
            within=within,
            what="the new leader writing to the status service",
            interval=0.1,
        )
        return Takeover(
            lease_taken_seconds=round(taken_at - killed_at, 2), first_write_seconds=round(time.time() - killed_at, 2)
        )

    def read(self, url: str) -> dict[str, Any] | None:
        """The ``data`` of a gateway answer; None when the gateway does not know it (404)."""
        try:
            data: dict[str, Any] = http_json(f"{self.gateways[0]}{url}")["data"]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return data

    def unfinished(
        self, ids: list[str], url: str, finished: Callable[[dict[str, Any]], bool], within: float
    ) -> list[str]:
        """Wait up to ``within`` s until ``finished`` holds for every ``url.format(id)``; the ids it
        never did (unknown ones count: lost)."""
        pending = list(ids)

        def done() -> bool:
            pending[:] = [item for item in pending if not finished(self.read(url.format(item)) or {})]
            return not pending

        with contextlib.suppress(TimeoutError):
            wait_until_blocking(done, within=within, what="every accepted one finished", interval=0.5)
        return pending

    def missing_from_the_bucket(self, media_ids: list[str]) -> list[str]:
        """The media whose original or any variant is not in the bucket."""
        client = s3_client(self.s3_url, S3_KEY, S3_KEY, "us-east-1")
        keys: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys.update(item["Key"] for item in page.get("Contents", []))
        missing = []
        for media_id in media_ids:
            media = self.read(f"/api/admin/media/{media_id}") or {}
            variants = len([key for key in keys if key.startswith(f"variants/{media_id}/")])
            if f"originals/{media_id}" not in keys or not media.get("variants") or variants != len(media["variants"]):
                missing.append(media_id)
        return missing


def state_is(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda data: data.get("state") == state


def synced(media: dict[str, Any]) -> bool:
    return media.get("state") == "ready" and bool(media.get("syncedToS3"))


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
            s3_client(s3.url, S3_KEY, S3_KEY, "us-east-1").create_bucket(Bucket=BUCKET)
            yield redis_server.url, s3.url
        finally:
            s3.close()
    finally:
        redis_server.stop()


def run(workdir: Path, redis_url: str, s3_url: str, *, down_seconds: float, calm_seconds: float) -> dict[str, Any]:
    drill = Drill(workdir, redis_url, s3_url, down_seconds=down_seconds, calm_seconds=calm_seconds)
    seconds: dict[str, float] = {}
    began = time.monotonic()
    try:
        drill.start()
        seconds["start"] = round(time.monotonic() - began, 1)
        load = Load(drill.gateways)
        load.start()
        time.sleep(calm_seconds)
        load.phase = "steady"
        time.sleep(calm_seconds)
        for kind in KINDS:
            drill.kill_and_restart(kind, load)
        drill.wait_restarted()
        load.phase = "all back"
        time.sleep(calm_seconds)
        load.stop()
        seconds["load"] = round(time.monotonic() - began - seconds["start"], 1)
        settled = time.monotonic()
        lost = drill.unfinished(load.accepted, "/api/queues/workflow/jobs/{}", state_is("completed"), within=120)
        seconds["settle_jobs"] = round(time.monotonic() - settled, 1)
        undelivered = drill.unfinished(load.notified, "/api/notifications/{}", state_is("delivered"), within=60)
        seconds["settle_notifications"] = round(time.monotonic() - settled - seconds["settle_jobs"], 1)
        unsynced = drill.unfinished(load.uploaded, "/api/admin/media/{}", synced, within=120)
        not_in_bucket = drill.missing_from_the_bucket([m for m in load.uploaded if m not in unsynced])
        seconds["settle"] = round(time.monotonic() - settled, 1)
    finally:
        drill.stop()
    # Every kind of call kept answering while each kind had a replica down or starting (through
    # the other replica), and answered once every replica was back.
    answered = all(
        load.tallies[name].ok[f"{kind} killed"] + load.tallies[name].ok[f"{kind} restarting"] > 0
        for name in CALLS
        for kind in KINDS
    ) and all(load.tallies[name].ok["all back"] > 0 for name in CALLS)
    # Calls may fail only while a replica is down or starting (each failure counts for the phase
    # it failed in): none before the first kill nor once every replica is back.
    failed_outside_failover = {
        f"{name}: {why}": count
        for name, tally in load.tallies.items()
        for why, count in tally.why.items()
        if why.partition(": ")[0] in CALM_PHASES
    }
    summary: dict[str, Any] = {
        "replicas": REPLICAS,
        "accepted_jobs": len(load.accepted),
        "lost_jobs": lost,
        "accepted_notifications": len(load.notified),
        "undelivered_notifications": undelivered,
        "accepted_uploads": len(load.uploaded),
        "unsynced_uploads": unsynced,
        "uploads_missing_from_the_bucket": not_in_bucket,
        **{
            name: {"ok": sum(tally.ok.values()), "failed": dict(tally.failed), "why": dict(tally.why)}
            for name, tally in load.tallies.items()
        },
        "ingest_takeover": takeover_summary(drill.takeover),
        "answered_through_every_failover": answered,
        "failed_outside_failover": failed_outside_failover,
        "seconds": seconds,
    }
    summary["passed"] = (
        not lost
        and not undelivered
        and not unsynced
        and not not_in_bucket
        and drill.takeover is not None
        and answered
        and not failed_outside_failover
        and bool(load.accepted and load.notified and load.uploaded)
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--down-seconds", type=float, default=5.0, help="how long each killed replica stays dead")
    parser.add_argument("--calm-seconds", type=float, default=3.0, help="load between the kills")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sb-drill-") as tmp, dependencies(Path(tmp)) as (redis_url, s3_url):
        summary = run(Path(tmp), redis_url, s3_url, down_seconds=args.down_seconds, calm_seconds=args.calm_seconds)
    print(json.dumps(summary, indent=2))
    if summary["ingest_takeover"] is not None:
        print(takeover_line(summary["ingest_takeover"]))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
