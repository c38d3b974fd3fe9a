"""Live status benchmarks (AMI replay throughput, AMI event → watch latency), each printed beside its target.

Setup: a throwaway redis-server, the status service and ami_ingest as their own processes
(``python -m ...``, the way they are deployed), AMI servers as processes too; all on loopback.

1. Parse + apply: the replay server (``python -m services.ami_ingest.simulator --replay
   busy_hour_small.ami --speed 0 --repeat 20``) streams the largest fixture as fast as the ingest
   reads it, its live events :data:`REPLAY_REPEAT` times in a row (~237,000 events, seconds of
   work: one capture alone is ~0.1 s, where one descheduling of a process decides the figure).
   Time runs from the ingest's connect (``connected_since``, taken right after login, before the
   resync) to the status service applying the ingest's last batch in Redis (the snapshot's
   ``last_ingest_at``; heartbeats are off so nothing later moves it). Median of 3 runs, each with
   a fresh replay and ingest. The final snapshot is checked against the sidecar's truth (every
   call of the capture ends, so each pass leaves the same state) so a broken run never counts.
   Its anchor, measured after each replay (alternating, so the load falls on both): the same bytes
   (the capture, then its live events repeated as the replay sends them) through parser +
   normalizer + state in this process (the parser with lazy headers, as the ingest's client uses
   it), without network or Redis. The target is the replay's median rate as a share of the
   anchor's median; both absolute rates are information. So is the CPU per AMI event of the
   ingest process (its start-up excluded: it starts before the AMI server) beside the anchor's:
   with a core to itself the ingest runs at the anchor's rate times their ratio, at any load.
2. Event → visible: ``bench/_live_status_ami.py`` (its own process) writes ``QueueMemberPause``
   events at a steady rate, each with a unique ``PausedReason``, stamping ``time.time()`` after
   each write. A WatchSnapshot client here (on uvloop, as the gateway runs) stamps each reason's
   arrival; it subscribes once the status service knows the watched queue. When the publisher
   coalesced several events of the row into one batch, an event counts as visible when the first
   later event's change arrives (its effect is on screen from then on). The first 2 s are warm-up.
   Runs at 500 and at 2,000 events/s. Its anchor: Redis round trips (PING) from this process,
   sampled every 10 ms during the same run; the target is the p99 in median round trips.
   Information beside it, measured right after each run at the same rate: the floor of that path
   with grpcio (``bench/_grpc_stream_floor.py``: bare grpc.aio, raw bytes, nothing of ours): one
   stream hop, and the path's shape (a push stream into a relay that waits for one Redis PING per
   message, then a watch stream out, three processes; the pusher keeps at most as many messages
   unanswered as the ingest's publisher keeps batches), also in median round trips of the run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from switchboard.status.v1 import status_pb2, status_pb2_grpc

from bench._grpc_stream_floor import floor_latencies
from bench._live_status_ami import QUEUE as WATCHED_QUEUE
from bench._live_status_procs import (
    cpu_seconds,
    ingest_process,
    ingest_service,
    module_process,
    snapshot,
    status_process,
    wait_ingest_settled,
    wait_live,
)
from devsupport.auth import aio_channel
from devsupport.ports import free_port
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until_blocking
from runtime.event_loop import event_loop_factory
from services.ami_ingest.ami.transport import READ_CHUNK
from services.ami_ingest.ami.wire import FrameParser
from services.ami_ingest.domain.normalize import EventNormalizer
from services.ami_ingest.domain.state import CallCenterState
from services.ami_ingest.simulator.recording import LiveStep, load_recording

FIXTURE = Path("/work/shared/fixtures/ami/busy_hour_small.ami")
REPLAY_RUNS = 3
REPLAY_REPEAT = 20
"""Passes over the capture's live events in one replay (and in its anchor)."""
REPLAY_SHARE_TARGET = 85.0
"""% of the in-process parse + normalize + apply rate the replay into Redis should reach."""
RATES = (500, 2000)
"""Events/s of the event → visible runs."""
WATCH_TO_RTT_TARGET = 3.0
"""Event → WatchSnapshot p99 at most this many median Redis round trips of the same run."""
PING_INTERVAL_S = 0.01
WARMUP_S = 2.0
MEASURE_S = 10.0


def row(name: str, value: float, unit: str, target: str) -> dict[str, Any]:
    if target == "info":
        return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": True}
    op, limit = target.split()
    met = value <= float(limit) if op == "<=" else value >= float(limit)
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "met": met}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- 1. parse + apply ---------------------------------------------------------------------------


def sidecar() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.with_suffix(".json").read_text())
    return data


def check_truth(snap: status_pb2.Snapshot) -> None:
    truth = sidecar()["expected_final_state"]
    members = sum(len(q["members"]) for q in truth["queues"].values())
    got = (len(snap.operators), len(snap.channels), sum(q.waiting for q in snap.queues))
    want = (members, truth["channel_count"], sum(q["callers_waiting"] for q in truth["queues"].values()))
    if got != want:
        raise AssertionError(f"replay ended in a wrong state: (operators, channels, waiting) {got} != {want}")


@dataclass(frozen=True)
class ReplayRun:
    seconds: float
    """From the ingest's connect to the status applying its last batch."""
    ingest_cpu: float
    """CPU seconds the ingest process used meanwhile (its start-up excluded)."""


def replay_once(redis_url: str, status_addr: str) -> ReplayRun:
    """One replay; the ingest starts first (its start-up CPU is not the replay's), the AMI server
    once the ingest serves, and the ingest connects on its next retry."""
    port = free_port()
    username, secret = "bench", "bench-replay-secret"  # the login the replay accepts and the ingest presents
    args = ["--port", str(port), "--replay", str(FIXTURE), "--speed", "0", "--repeat", str(REPLAY_REPEAT)]
    args += ["--username", username, "--secret", secret, "--log-level", "INFO"]
    with ingest_service(redis_url, status_addr, port, username, secret) as (ingest, pid):
        cpu_before = cpu_seconds(pid)
        with module_process("services.ami_ingest.simulator", *args, ready_text="simulator ready"):
            # The duration comes from the ingest's and the status' own clocks: polling only finds the end.
            reply = wait_ingest_settled(ingest, quiet_s=1.0, interval_s=0.5, within_s=300)
            cpu = cpu_seconds(pid) - cpu_before
            snap = snapshot(status_addr)
            check_truth(snap)
            return ReplayRun(snap.last_ingest_at - reply.connected_since, cpu)


def replay_bytes() -> list[bytes]:
    """What the replay sends, in reads of the ingest's size: the capture, then its live events
    again ``REPLAY_REPEAT - 1`` times (as the replay server encodes them)."""
    data = FIXTURE.read_bytes()
    (segment,) = load_recording(FIXTURE).segments
    live = b"".join(step.data for step in segment.steps if isinstance(step, LiveStep))
    once = [data[i : i + READ_CHUNK] for i in range(0, len(data), READ_CHUNK)]
    again = [live[i : i + READ_CHUNK] for i in range(0, len(live), READ_CHUNK)]
    return once + again * (REPLAY_REPEAT - 1)


def in_process_rate(chunks: list[bytes]) -> tuple[int, float, float]:
    """AMI events in ``chunks``, their rate (events/s) through parser + normalizer + state in
    this process, and the CPU seconds that took."""
    started, cpu = time.perf_counter(), time.process_time()
    # Lazy headers, like the ingest's client: most events are only looked at by name.
    parser, normalizer, state = FrameParser(lazy_headers=True), EventNormalizer(), CallCenterState()
    events = 0
    now = time.time()
    for chunk in chunks:
        for frame in parser.feed(chunk):
            if frame.event is None:
                continue
            events += 1  # AMI events, as in the end-to-end figure (most normalise to nothing)
            for event in normalizer.events(frame):
                state.apply(event, now)
    return events, events / (time.perf_counter() - started), time.process_time() - cpu


def replay_rows(redis_url: str, status_addr: str) -> list[dict[str, Any]]:
    """The replay into Redis judged as a share of the in-process rate, the two measured in
    alternating runs (a replay, then the same bytes in process) so the machine's load falls on both."""
    chunks = replay_bytes()
    runs: list[ReplayRun] = []
    in_process: list[float] = []
    anchor_cpu: list[float] = []
    events = 0
    for _ in range(REPLAY_RUNS):
        runs.append(replay_once(redis_url, status_addr))
        events, rate, cpu = in_process_rate(chunks)
        in_process.append(rate)
        anchor_cpu.append(cpu)
    rows = replay_share_rows(events, [run.seconds for run in runs], in_process)
    return rows + replay_cpu_rows(events, [run.ingest_cpu for run in runs], anchor_cpu)


def replay_cpu_rows(events: int, ingest_cpu: list[float], anchor_cpu: list[float]) -> list[dict[str, Any]]:
    """CPU per AMI event of the ingest process during the replays and of the anchor (medians):
    with a core of its own the ingest runs at the anchor's rate times their ratio, whatever the load."""
    ingest, anchor = statistics.median(ingest_cpu) / events * 1e6, statistics.median(anchor_cpu) / events * 1e6
    return [
        row("  live: replay, ingest process CPU per AMI event (median)", ingest, "µs", "info"),
        row("  anchor: in-process CPU per AMI event (median)", anchor, "µs", "info"),
        row("  live: replay, ingest CPU per event / the anchor's", ingest / anchor * 100, "%", "info"),
    ]


def replay_share_rows(events: int, durations: list[float], in_process: list[float]) -> list[dict[str, Any]]:
    """The rows of :func:`replay_rows`: ``events`` replayed in each of ``durations`` seconds,
    beside the in-process rates (events/s) measured between them."""
    replay, anchor = events / statistics.median(durations), statistics.median(in_process)
    share = replay / anchor * 100
    runs = f"median of {len(durations)}"
    return [
        row(
            f"  live: replay busy_hour_small ×{REPLAY_REPEAT} ({events:,} events) → Redis, one ingest ({runs})",
            replay,
            "events/s",
            "info",
        ),
        row(f"  live: same replay, best of {len(durations)}", events / min(durations), "events/s", "info"),
        row(f"  anchor: parse+normalize+apply in-process, same bytes ({runs})", anchor, "events/s", "info"),
        row(
            "live: replay → Redis / in-process parse+normalize+apply",
            share,
            f"% of the anchor ({replay:,.0f} vs {anchor:,.0f} events/s)",
            f">= {REPLAY_SHARE_TARGET:g}",
        ),
    ]


# -- 2. event → visible -------------------------------------------------------------------------


async def watch_arrivals(status_addr: str, total: int, until: float) -> tuple[dict[str, float], dict[str, float]]:
    """When each reason arrived on the watch, and the ``emitted_at`` its change set carried (when
    the ingest handled the AMI event), by reason."""
    arrivals: dict[str, float] = {}
    emitted: dict[str, float] = {}
    async with aio_channel(status_addr) as channel:
        stub = status_pb2_grpc.StatusServiceStub(channel)
        call = stub.WatchSnapshot(status_pb2.WatchSnapshotRequest(queue_names=[WATCHED_QUEUE]))
        try:
            async with asyncio.timeout(until - time.time()):
                async for response in call:
                    stamp = time.time()
                    for change in response.changes.changes:
                        reason = change.operator_upserted.paused_reason
                        if reason.startswith("r"):
                            arrivals.setdefault(reason, stamp)
                            emitted.setdefault(reason, response.changes.emitted_at)
                    if len(arrivals) >= total or f"r{total - 1:06d}" in arrivals:
                        break
        except TimeoutError:
            pass
        finally:
            call.cancel()
    return arrivals, emitted


def visible_latencies(sent: dict[str, float], arrivals: dict[str, float], rate: int) -> tuple[list[float], int]:
    """Per event: ms until it, or a later event superseding it, showed on the watch."""
    order = sorted(sent)
    latencies: list[float] = []
    coalesced = 0
    seen_at: float | None = None
    for reason in reversed(order):  # walk back: the earliest later arrival covers the ones before
        if reason in arrivals:
            seen_at = arrivals[reason] if seen_at is None else min(seen_at, arrivals[reason])
        else:
            coalesced += 1
        if seen_at is not None and int(reason[1:]) >= rate * WARMUP_S:
            latencies.append((seen_at - sent[reason]) * 1000)
    return latencies, coalesced


def stages(
    sent: dict[str, float], arrivals: dict[str, float], emitted: dict[str, float], rate: int
) -> tuple[list[float], list[float]]:
    """Of each event that arrived itself (after the warm-up): ms from its write to the ingest
    handling it (``emitted_at``: AMI socket, parse, normalize), and from there to its arrival on
    the watch (publish, gRPC into the status service, the Redis write, fan-out, gRPC out)."""
    to_ingest: list[float] = []
    to_watch: list[float] = []
    for reason, seen_at in arrivals.items():
        if reason in sent and reason in emitted and int(reason[1:]) >= rate * WARMUP_S:
            to_ingest.append((emitted[reason] - sent[reason]) * 1000)
            to_watch.append((seen_at - emitted[reason]) * 1000)
    return to_ingest, to_watch


class RoundTrips:
    """Redis PING round trips (ms) from this process, sampled every :data:`PING_INTERVAL_S` in a
    thread while a measurement runs: the anchor of the event → visible latency, under the same load."""

    def __init__(self, redis_url: str) -> None:
        self.samples: list[float] = []
        self._client = redis.Redis.from_url(redis_url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="redis-rtt", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(PING_INTERVAL_S):
            started = time.perf_counter()
            self._client.ping()
            self.samples.append((time.perf_counter() - started) * 1000)

    @property
    def sampling(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> RoundTrips:
        self._client.ping()  # connected before the first sample
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()


def wait_queue_known(status_addr: str) -> None:
    """Until the status service knows the watched queue: the ingest reports LIVE once its resync is
    published, possibly before the status applied it, and a watch of a queue it does not know yet
    is refused (NOT_FOUND)."""

    def known() -> bool:
        snap = snapshot(status_addr)
        return any(q.name == WATCHED_QUEUE for q in snap.queues) or any(
            op.queue_name == WATCHED_QUEUE for op in snap.operators
        )

    wait_until_blocking(known, within=20, what=f"the status service knows queue {WATCHED_QUEUE!r}", interval=0.02)


def event_to_visible(redis_url: str, status_addr: str, workdir: Path, rate: int) -> VisibleRun:
    port = free_port()
    out = workdir / f"sent-{rate}.json"
    total = int(rate * (WARMUP_S + MEASURE_S))
    args = ["--port", str(port), "--rate", str(rate), "--seconds", str(WARMUP_S + MEASURE_S), "--delay", "1.0"]
    with (
        module_process("bench._live_status_ami", *args, "--out", str(out), ready_text="ready"),
        ingest_process(redis_url, status_addr, port, "bench", "bench-secret") as ingest,
    ):
        wait_live(ingest)
        wait_queue_known(status_addr)
        with RoundTrips(redis_url) as round_trips, asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            # On uvloop, as the gateway (the real watcher) and the floor's watcher run.
            arrivals, emitted = runner.run(watch_arrivals(status_addr, total, time.time() + WARMUP_S + MEASURE_S + 10))
        wait_until_blocking(out.exists, within=10, what="the AMI feeder wrote its send stamps")
        sent: dict[str, float] = json.loads(out.read_text())
    latencies, coalesced = visible_latencies(sent, arrivals, rate)
    to_ingest, to_watch = stages(sent, arrivals, emitted, rate)
    return VisibleRun(rate, latencies, coalesced, len(sent), round_trips.samples, to_ingest, to_watch)


@dataclass(frozen=True)
class VisibleRun:
    """One event → visible run at ``rate`` events/s, and the Redis round trips sampled meanwhile."""

    rate: int
    latencies: list[float]
    """ms per event measured (after the warm-up)."""
    coalesced: int
    sent: int
    round_trips: list[float]
    """ms per Redis PING."""
    to_ingest: list[float] = field(default_factory=list)
    """ms from an event's write to the ingest handling it (events that arrived themselves)."""
    to_watch: list[float] = field(default_factory=list)
    """ms from the ingest handling an event to its arrival on the watch."""

    def rows(self) -> list[dict[str, Any]]:
        p50, p99 = percentile(self.latencies, 0.5), percentile(self.latencies, 0.99)
        rtt = statistics.median(self.round_trips)
        at = f"@{self.rate}/s"
        return [
            row(f"  live: AMI event → WatchSnapshot p50 {at}", p50, "ms", "info"),
            row(f"  live: AMI event → WatchSnapshot p99 {at}", p99, "ms", "info"),
            row(
                f"  anchor: Redis round trip (PING) median during the run {at}",
                rtt,
                f"ms ({len(self.round_trips)} pings)",
                "info",
            ),
            row(
                f"live: AMI event → WatchSnapshot p99 / median Redis round trip {at}",
                p99 / rtt,
                f"round trips ({p99:.2f} ms vs {rtt:.3f} ms)",
                f"<= {WATCH_TO_RTT_TARGET:g}",
            ),
            row(
                f"live: events measured {at} (after warm-up)",
                len(self.latencies),
                "events",
                f">= {self.rate * MEASURE_S:g}",
            ),
            row(
                f"  live: events coalesced with a later one {at}", self.coalesced / max(self.sent, 1) * 100, "%", "info"
            ),
            *self.stage_rows(at),
        ]

    def stage_rows(self, at: str) -> list[dict[str, Any]]:
        """Where the time goes: AMI write → ingest, and ingest → watch (p50 and p99 of each)."""
        out: list[dict[str, Any]] = []
        for what, values in (("AMI write → ingest handled", self.to_ingest), ("ingest → WatchSnapshot", self.to_watch)):
            if values:
                p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
                out.append(row(f"  live: stage {what} p50 / p99 {at}", p50, f"ms (p99 {p99:.2f} ms)", "info"))
        return out


def run() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sb-live-bench-") as tmp, RedisServer() as redis:
        workdir = Path(tmp)
        with status_process(redis.url, workdir) as status_addr:
            results += replay_rows(redis.url, status_addr)

            for rate in RATES:
                run = event_to_visible(redis.url, status_addr, workdir, rate)
                results += run.rows()
                results += floor_rows(redis.url, rate, statistics.median(run.round_trips))
    return results


FLOOR_S = 6.0
"""Seconds each floor shape runs (the first :data:`FLOOR_WARMUP_S` not counted)."""
FLOOR_WARMUP_S = 1.0


def floor_rows(redis_url: str, rate: int, rtt: float) -> list[dict[str, Any]]:
    """The grpcio floor of the event → WatchSnapshot path at ``rate``, beside the run's round trip ``rtt`` (ms)."""
    return floor_rows_of(rate, rtt, *floor_latencies(redis_url, rate, FLOOR_S, FLOOR_WARMUP_S))


def floor_rows_of(rate: int, rtt: float, one_hop: list[float], shape: list[float]) -> list[dict[str, Any]]:
    """The rows of :func:`floor_rows` for its measured latencies (ms)."""
    at = f"@{rate}/s"
    rows: list[dict[str, Any]] = []
    for what, values in (
        ("one bare grpc.aio stream hop", one_hop),
        ("bare push stream → relay (1 Redis PING) → watch stream", shape),
    ):
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        rows += [
            row(f"  floor: {what}, p50 / p99 {at}", p50, f"ms (p99 {p99:.2f} ms, {len(values)} events)", "info"),
            row(f"  floor: {what}, p99 / median Redis round trip {at}", p99 / rtt, "round trips", "info"),
        ]
    return rows
