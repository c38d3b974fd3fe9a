"""``make drill``: two replicas of every process against one Redis; kill -9 one of each in turn.

The suite runs as it would with two pods per Deployment: status, ami_ingest, queue_admin, the
workflow worker, media, the media processing and sync workers, notify, the notify worker and the
gateway twice each, on distinct ports, one Redis (append-only, fsync always, as ``make run``
starts it), one SQLite database, one media directory (the shared ``media-data`` volume) and S3
(moto's server). Clients dial both replicas of a service (``ipv4:127.0.0.1:A,127.0.0.1:B``,
round_robin: what a headless Service's name gives). Load goes through both gateways, as a
Service would spread it, with the suite's credential (:mod:`scripts.drill_load`): status reads
that reach the status service, job enqueues, in-app notifications and image uploads. The suite
itself is :mod:`scripts.drill_suite`; the checks once the load stopped, :mod:`scripts.drill_settle`.

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
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devsupport.waiting import wait_until_blocking
from scripts.drill_load import CALLS, Load, http_json
from scripts.drill_settle import missing_from_the_bucket, state_is, synced, unfinished
from scripts.drill_suite import KINDS, REPLICAS, Replica, Suite, dependencies
from scripts.drill_takeover import INGEST_LEASE_MS, Takeover, takeover_line, takeover_summary
from services.ami_ingest import keys as ingest_keys

__all__ = ["Drill", "dependencies", "main", "run"]

CALM_PHASES = ("warm-up", "steady", "all back")
"""The load's phases with every replica up: no call may fail in them."""


class Drill(Suite):
    """The suite, with one replica of each kind killed and restarted in turn."""

    def __init__(self, workdir: Path, redis_url: str, s3_url: str, *, down_seconds: float, calm_seconds: float) -> None:
        super().__init__(workdir, redis_url, s3_url)
        self.down_seconds = down_seconds
        self.calm_seconds = calm_seconds
        self.takeover: Takeover | None = None
        self.restarted: list[Replica] = []

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
        gateway = drill.gateways[0]
        lost = unfinished(gateway, load.accepted, "/api/queues/workflow/jobs/{}", state_is("completed"), within=120)
        seconds["settle_jobs"] = round(time.monotonic() - settled, 1)
        undelivered = unfinished(gateway, load.notified, "/api/notifications/{}", state_is("delivered"), within=60)
        seconds["settle_notifications"] = round(time.monotonic() - settled - seconds["settle_jobs"], 1)
        unsynced = unfinished(gateway, load.uploaded, "/api/admin/media/{}", synced, within=120)
        not_in_bucket = missing_from_the_bucket(gateway, drill.s3_url, [m for m in load.uploaded if m not in unsynced])
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
