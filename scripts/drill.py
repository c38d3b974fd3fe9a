"""``make drill``: two replicas of every process against one Redis; kill -9 one of each in turn.

The suite runs as it would with two pods per Deployment: status, ami_ingest, queue_admin, the
workflow worker, notify, the notify worker and the gateway twice each, on distinct ports, one
Redis (append-only, fsync always, as ``make run`` starts it) and one SQLite database. Clients
dial both replicas of a service (``ipv4:127.0.0.1:A,127.0.0.1:B``, round_robin: what a headless
Service's name gives). Load goes through both gateways, as a Service would spread it, with the
suite's credential (devsupport.auth): status reads that reach the status service
(``/api/queue-status/sync/status``), job enqueues (``POST /api/queues/workflow/jobs``) and in-app
notifications (``POST /api/notifications``).

Then, for each kind in turn, one replica is killed with SIGKILL (for ami_ingest: the one holding
the lease), left dead for ``--down-seconds``, and started again. The drill counts the failed
calls of each phase (failover), measures how long the ingest standby took to take over (the
time until the status service saw an ingest write again; the bound is lease + poll), and finally
waits for every accepted job to complete and every accepted notification to be delivered. It
prints a JSON summary; exit status 0 when nothing accepted was lost, the standby took over, and
every kind of call answered again after every failover.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from devsupport.auth import AUTH_HEADERS
from devsupport.ports import free_ports
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until_blocking
from services.ami_ingest import keys as ingest_keys

REPLICAS = 2
KINDS = ("status", "ami_ingest", "queue_admin", "workflow_worker", "notify", "notify_worker", "gateway")
MODULES = {
    "status": "services.status",
    "ami_ingest": "services.ami_ingest",
    "queue_admin": "services.queue_admin",
    "workflow_worker": "services.workflow.worker",
    "notify": "services.notify",
    "notify_worker": "services.notify.worker",
    "gateway": "gateway",
}
GRPC_KINDS = {
    "status": "STATUS_ADDR",
    "ami_ingest": "AMI_INGEST_ADDR",
    "queue_admin": "QUEUE_ADMIN_ADDR",
    "notify": "NOTIFY_ADDR",
}
JOB = {"name": "statistics_aggregation", "data": {"duration_ms": 200}}
"""A job that takes a while, so a killed worker has jobs in flight (re-run once their lease lapses)."""
NOTIFICATION = {"channel": "database", "to": "drill-operator", "text": "failover drill"}
"""An in-app notification: delivered by the notify worker into the inbox, no provider needed."""
CALLS = ("reads", "enqueues", "notifications")
INGEST_LEASE_MS = 2000
INGEST_POLL_SECONDS = 1.0
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
        self.process = ServiceProcess.module(MODULES[self.kind], env=self.env).start()

    def wait_ready(self) -> None:
        assert self.process is not None
        if self.kind == "gateway":
            self.process.wait_http(f"http://{self.address}/readyz", timeout=READY_SECONDS)
        elif self.kind in GRPC_KINDS:
            self.process.wait_serving(self.address, timeout=READY_SECONDS)
        else:
            self.process.wait_http(f"http://{self.address}/readyz", timeout=READY_SECONDS)


@dataclass
class Tally:
    """Calls of one kind (reads or enqueues), counted by outcome and by drill phase."""

    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, phase: str, succeeded: bool) -> None:
        with self.lock:
            (self.ok if succeeded else self.failed)[phase] += 1


class Load:
    """A thread per kind of call, each calling the gateways in turn: status reads, job enqueues and
    notifications (the ids of the accepted ones kept)."""

    def __init__(self, gateways: list[str]) -> None:
        self.gateways = gateways
        self.phase = "warm-up"
        self.tallies = {name: Tally() for name in CALLS}
        self.accepted: list[str] = []
        self.notified: list[str] = []
        self._stop = threading.Event()
        calls = {"reads": self._read, "enqueues": self._enqueue, "notifications": self._notify}
        self._threads = [
            threading.Thread(
                target=self._loop, args=(calls[name], self.tallies[name]), name=f"drill-{name}", daemon=True
            )
            for name in CALLS
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _loop(self, call: Callable[[str], None], tally: Tally) -> None:
        turn = 0
        while not self._stop.is_set():
            phase = self.phase
            try:
                call(self.gateways[turn % len(self.gateways)])
            except (OSError, urllib.error.URLError, ValueError, KeyError):
                tally.record(phase, False)
                self._stop.wait(0.05)  # a refused connection returns at once: do not spin
            else:
                tally.record(phase, True)
            turn += 1
            self._stop.wait(0.02)

    @staticmethod
    def _read(gateway: str) -> None:
        http_json(f"{gateway}/api/queue-status/sync/status")

    def _enqueue(self, gateway: str) -> None:
        job_id = http_json(f"{gateway}/api/queues/workflow/jobs", JOB)["data"]["jobId"]
        self.accepted.append(job_id)

    def _notify(self, gateway: str) -> None:
        (notification_id,) = http_json(f"{gateway}/api/notifications", NOTIFICATION)["data"]["notificationIds"]
        self.notified.append(notification_id)


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **AUTH_HEADERS})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


class Drill:
    def __init__(self, workdir: Path, redis_url: str, *, down_seconds: float, calm_seconds: float) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
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
            "MEDIA_ADDR": "127.0.0.1:9",
            "METRICS_PORT": "-1",
            "LOG_FORMAT": "console",
            "WORKFLOW_CONCURRENCY": "4",
            "WORKFLOW_KEEP_COMPLETED": "1000000",  # every accepted job is looked up at the end
            **dial,
        }
        for kind, replicas in self.replicas.items():
            for replica in replicas:
                own = {"DATA_DIR": str(workdir / f"{kind}-{replica.index}")}
                if kind in GRPC_KINDS:
                    own[GRPC_KINDS[kind]] = replica.address
                elif kind == "gateway":
                    own["GATEWAY_PORT"] = str(replica.port)
                else:
                    own.update({"METRICS_PORT": str(replica.port), "METRICS_HOST": "127.0.0.1"})
                replica.env = {**common, **own}
        self.feed = ServiceProcess.module("services.ami_ingest.simulator", "--port", str(ami_port), env=common)
        self.redis = redis.Redis.from_url(redis_url)
        self.takeover_seconds: float | None = None

    def start(self) -> None:
        self.feed.start()
        for kind in KINDS:
            for replica in self.replicas[kind]:
                replica.start()
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
        lease = self.redis.get(ingest_keys.leader_key(self.source_id))
        token = lease.decode().partition("|")[2] if isinstance(lease, bytes) else ""
        for replica in self.replicas[kind]:
            assert replica.process is not None
            if token and f"fencing_token={token}" in replica.process.stdout:
                return replica
        return self.replicas[kind][0]

    def last_ingest_at(self) -> float:
        return float(http_json(f"{self.gateways[-1]}/api/queue-status/sync/status")["data"]["lastIngestAt"] or 0)

    def kill_and_restart(self, kind: str, load: Load) -> None:
        replica = self.victim(kind)
        assert replica.process is not None
        load.phase = f"{kind} killed"
        killed_at = time.time()
        replica.process.kill()
        if kind == "ami_ingest":
            wait_until_blocking(
                lambda: self.last_ingest_at() > killed_at,
                within=INGEST_LEASE_MS / 1000 * 6 + 30,
                what="the ingest standby writing to the status service",
                interval=0.1,
            )
            self.takeover_seconds = round(time.time() - killed_at, 2)
        time.sleep(self.down_seconds)  # the load keeps running against the surviving replica
        load.phase = f"{kind} restarting"
        replica.start()
        replica.wait_ready()
        load.phase = f"after {kind}"
        time.sleep(self.calm_seconds)

    def unfinished(self, ids: list[str], url: str, finished: str, within: float) -> list[str]:
        """Wait up to ``within`` s until every ``url.format(id)`` says state ``finished``; the ids that
        never did (unknown ones count: lost)."""
        pending = list(ids)

        def state(item: str) -> str:
            try:
                return str(http_json(f"{self.gateways[0]}{url.format(item)}")["data"]["state"])
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return "unknown"
                raise

        def done() -> bool:
            pending[:] = [item for item in pending if state(item) != finished]
            return not pending

        with contextlib.suppress(TimeoutError):
            wait_until_blocking(done, within=within, what=f"every accepted one {finished}", interval=0.5)
        return pending


def run(workdir: Path, redis_url: str, *, down_seconds: float, calm_seconds: float) -> dict[str, Any]:
    drill = Drill(workdir, redis_url, down_seconds=down_seconds, calm_seconds=calm_seconds)
    try:
        drill.start()
        load = Load(drill.gateways)
        load.start()
        time.sleep(calm_seconds)
        load.phase = "steady"
        time.sleep(calm_seconds)
        for kind in KINDS:
            drill.kill_and_restart(kind, load)
        load.stop()
        lost = drill.unfinished(load.accepted, "/api/queues/workflow/jobs/{}", "completed", within=120)
        undelivered = drill.unfinished(load.notified, "/api/notifications/{}", "delivered", within=60)
    finally:
        drill.stop()
    recovered = all(load.tallies[name].ok[f"after {kind}"] for name in CALLS for kind in KINDS)
    summary: dict[str, Any] = {
        "replicas": REPLICAS,
        "accepted_jobs": len(load.accepted),
        "lost_jobs": lost,
        "accepted_notifications": len(load.notified),
        "undelivered_notifications": undelivered,
        **{name: {"ok": sum(tally.ok.values()), "failed": dict(tally.failed)} for name, tally in load.tallies.items()},
        "ingest_takeover_seconds": drill.takeover_seconds,
        "ingest_lease_plus_poll_seconds": INGEST_LEASE_MS / 1000 + INGEST_POLL_SECONDS,
        "recovered_after_every_kill": recovered,
    }
    summary["passed"] = (
        not lost
        and not undelivered
        and drill.takeover_seconds is not None
        and recovered
        and bool(load.accepted and load.notified)
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--down-seconds", type=float, default=5.0, help="how long each killed replica stays dead")
    parser.add_argument("--calm-seconds", type=float, default=3.0, help="load between the kills")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sb-drill-") as tmp:
        workdir = Path(tmp)
        server = RedisServer(data_dir=workdir / "redis", appendfsync="always")
        server.start()
        try:
            summary = run(workdir, server.url, down_seconds=args.down_seconds, calm_seconds=args.calm_seconds)
        finally:
            server.stop()
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
