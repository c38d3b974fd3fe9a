"""bench/live_status_bench.py: the replay into Redis judged as a share of the in-process rate
measured in the same run (row shape with tiny figures; no timings judged)."""

from __future__ import annotations

import os
import time

import pytest

from bench._grpc_stream_floor import floor_latencies
from bench._live_status_procs import cpu_seconds
from bench.live_status_bench import (
    REPLAY_SHARE_TARGET,
    WARMUP_S,
    WATCH_TO_RTT_TARGET,
    RoundTrips,
    VisibleRun,
    floor_rows_of,
    replay_cpu_rows,
    replay_share_rows,
    stages,
)
from bench.run import validate
from devsupport.waiting import wait_until_blocking


@pytest.mark.parametrize(("seconds", "met"), [(1.0, True), (1.25, False)])
def test_the_replay_rate_is_judged_as_a_share_of_the_in_process_rate(seconds: float, met: bool) -> None:
    # 1,000 events in a median of `seconds` s against a median in-process 1,000 events/s.
    results = validate("live", replay_share_rows(1000, [seconds, 0.5, 2.0], [900.0, 1000.0, 5000.0]))
    *information, judged = results
    assert all(r.target == "info" for r in information)
    assert [r.value for r in information] == [round(1000 / seconds, 3), 2000.0, 1000.0]
    assert judged.target == f">= {REPLAY_SHARE_TARGET:g}"
    assert (judged.value, judged.met) == (round(100 / seconds, 3), met)


def test_the_replay_prints_the_ingest_cpu_per_event_beside_the_anchors() -> None:
    # 1,000 events; median CPU 0.003 s in the ingest, 0.002 s in process.
    rows = validate("live", replay_cpu_rows(1000, [0.001, 0.003, 0.004], [0.002, 0.002, 0.009]))
    assert [(r.value, r.unit) for r in rows] == [(3.0, "µs"), (2.0, "µs"), (150.0, "%")]
    assert all(r.target == "info" for r in rows)


def test_a_process_cpu_time_is_read_from_proc() -> None:
    before = time.process_time()
    while time.process_time() - before < 0.05:
        pass
    assert cpu_seconds(os.getpid()) >= time.process_time() - 0.05


def test_the_watch_p99_is_judged_in_median_redis_round_trips_of_the_same_run() -> None:
    run = VisibleRun(rate=2, latencies=[1.0] * 98 + [5.0, 7.0], coalesced=1, sent=4, round_trips=[1.0, 2.0, 9.0])
    rows = {r.name: r for r in validate("live", run.rows())}
    judged = rows["live: AMI event → WatchSnapshot p99 / median Redis round trip @2/s"]
    assert (judged.value, judged.target, judged.met) == (3.5, f"<= {WATCH_TO_RTT_TARGET:g}", False)
    assert rows["  anchor: Redis round trip (PING) median during the run @2/s"].value == 2.0
    assert rows["live: events measured @2/s (after warm-up)"].value == 100
    assert [r.target for r in rows.values()].count("info") == 4


def test_the_watch_latency_is_split_at_the_moment_the_ingest_handled_each_event() -> None:
    run = VisibleRun(rate=2, latencies=[1.0], coalesced=0, sent=1, round_trips=[1.0], to_ingest=[0.5], to_watch=[2.5])
    rows = {r.name: r for r in validate("live", run.rows())}
    assert rows["  live: stage AMI write → ingest handled p50 / p99 @2/s"].value == 0.5
    assert rows["  live: stage ingest → WatchSnapshot p50 / p99 @2/s"].value == 2.5


def test_the_stages_count_only_events_that_arrived_themselves_after_the_warm_up() -> None:
    first_measured = int(2 * WARMUP_S)
    late, early, lost = f"r{first_measured:06d}", "r000000", f"r{first_measured + 1:06d}"
    sent = {late: 10.0, early: 1.0, lost: 10.5}
    arrivals = {late: 10.004, early: 1.001}
    emitted = {late: 10.001, early: 1.0005}
    to_ingest, to_watch = stages(sent, arrivals, emitted, rate=2)
    assert [round(v, 3) for v in to_ingest] == [1.0]
    assert [round(v, 3) for v in to_watch] == [3.0]


def test_redis_round_trips_are_sampled_while_a_run_lasts(redis_url: str) -> None:
    with RoundTrips(redis_url) as round_trips:
        wait_until_blocking(lambda: len(round_trips.samples) >= 3, within=20, what="three PINGs answered")
    taken = len(round_trips.samples)
    assert all(sample > 0 for sample in round_trips.samples)
    assert not round_trips.sampling, "sampling stops with the run"
    assert len(round_trips.samples) == taken


def test_the_grpc_floor_is_printed_beside_the_watch_rows_in_round_trips_of_the_same_run() -> None:
    one_hop, shape = [1.0] * 99 + [3.0], [2.0] * 98 + [8.0, 9.0]
    rows = {r.name: r for r in validate("live", floor_rows_of(2, 0.5, one_hop, shape))}
    assert all(r.target == "info" for r in rows.values())
    assert rows["  floor: one bare grpc.aio stream hop, p99 / median Redis round trip @2/s"].value == 6.0
    shape_row = "  floor: bare push stream → relay (1 Redis PING) → watch stream, p50 / p99 @2/s"
    assert (rows[shape_row].value, rows[shape_row].unit) == (2.0, "ms (p99 9.00 ms, 100 events)")


def test_the_floor_relays_every_pushed_stamp_to_its_watcher_once(redis_url: str) -> None:
    one_hop, shape = floor_latencies(redis_url, rate=200, seconds=0.5, warmup=0)
    assert len(shape) == 100
    assert one_hop
    assert all(latency > 0 for latency in one_hop + shape)
