"""Traces worth reading: the whole suite (``make run``'s runner) exports to a real OTLP receiver.

As the OpenTelemetry demo's telemetry tests do, the test reads the trace edges from what a
collector received: gateway → queue_admin → worker for an enqueued job, gateway → status for a
read, AMI batch → status apply → watch fan-out for the demo feed; and background loops (worker
claims, leases, probes, health checks) make at most a tenth of the exported traces.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import grpc
import pytest
from switchboard.ingest.v1 import ingest_pb2, ingest_pb2_grpc

from devsupport.auth import AUTH_HEADERS, sync_channel
from devsupport.procs import ServiceProcess
from devsupport.waiting import wait_until_blocking
from tests.support.local_suite import local_suite_ports
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

BACKGROUND_SHARE_AT_MOST = 0.10
BATCHES_AT_LEAST = 10
STARTUP_SECONDS = 90
"""A bound on the suite's start-up (every process of the Procfile, ~17 CPU-seconds), for each of
its two readiness waits: the gateway's backends, then ami_ingest live on the demo feed."""
BATCHES_WITHIN_SECONDS = 120
"""Counted once the suite is up (both readiness waits passed), not from the test's start."""


INGEST_PROBE = "/switchboard.ingest.v1.IngestControl/GetIngestStatus"


def ingest_live(address: str) -> bool:
    """ami_ingest leads, is logged in to the demo feed and has published its resync."""
    try:
        with sync_channel(address) as channel:
            reply = ingest_pb2_grpc.IngestControlStub(channel).GetIngestStatus(
                ingest_pb2.GetIngestStatusRequest(), timeout=2
            )
    except grpc.RpcError:
        return False
    return reply.is_leader and reply.state == ingest_pb2.CONNECTION_STATE_LIVE


def call(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json", **AUTH_HEADERS}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as answer:
        return json.load(answer)


class Traces:
    def __init__(self, spans: Iterable[ReceivedSpan]) -> None:
        self.spans = list(spans)
        self.by_id = {span.span_id: span for span in self.spans}
        self.by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
        for span in self.spans:
            self.by_trace[span.trace_id].append(span)

    def named(self, name: str, service: str | None = None) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name and (service is None or s.service == service)]

    def ancestors(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        """``span``'s parent, its parent, …, as far as the received spans go."""
        chain = []
        while span.parent_id in self.by_id:
            span = self.by_id[span.parent_id]
            chain.append(span)
        return chain

    def services_up_from(self, span: ReceivedSpan) -> list[str]:
        """The services on the way from ``span`` to its root, each once, nearest first."""
        services: list[str] = []
        for each in [span, *self.ancestors(span)]:
            if not services or services[-1] != each.service:
                services.append(each.service)
        return services

    @staticmethod
    def is_request_root(span: ReceivedSpan) -> bool:
        """A trace begun by a caller or a schedule: a gateway HTTP request, a batch of AMI changes,
        this test's own probe of the ingest (:func:`ingest_live`), or a scheduled job's tick (work
        the configuration asks for, such as the media pending sweep every 5 minutes, whose tick
        falls inside the test's window or not depending on the time of day)."""
        return (
            (span.service == "gateway" and span.kind == "server")
            or span.name == "ingest.batch"
            or (span.service == "ami_ingest" and span.name == INGEST_PROBE)
            or span.name.startswith("queue.schedule ")
        )

    def background_traces(self) -> list[str]:
        """Traces begun by something else than a request.

        A trace whose root was not received is left out: a background trace's root is made in the
        process of its other spans, so a missing root means a request trace cut short (its root
        process stopped before its last export, say) rather than background work."""
        return [
            trace_id
            for trace_id, spans in self.by_trace.items()
            if any(span.root for span in spans) and not any(span.root and self.is_request_root(span) for span in spans)
        ]

    def with_parent(self, spans: Iterable[ReceivedSpan]) -> list[ReceivedSpan]:
        """The spans whose parent was received too (a process's last spans may miss the stop)."""
        return [span for span in spans if span.parent_id in self.by_id]


@pytest.mark.slow
@pytest.mark.timeout(480)  # above the sum of its bounded waits (450 s), so a wait that runs out says which
def test_the_suite_exports_request_traces_with_their_edges_and_little_background(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for inherited in ("AMI_HOST", "RUN_PROCESSES", "DATABASE_URL", "TRACE_BACKGROUND", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(inherited, raising=False)
    suite_ports = local_suite_ports(redis_url, tmp_path / "data")
    gateway = suite_ports.gateway
    with OtlpReceiver() as receiver:
        env = {
            **suite_ports.env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        base = f"http://127.0.0.1:{gateway}"
        with ServiceProcess.module("scripts.run_local", env=env) as suite:
            try:
                suite.wait_http(f"{base}/readyz/backends", timeout=STARTUP_SECONDS)
                # /readyz/backends says nothing of the AMI side: the demo feed has no probe, and
                # ami_ingest serves (SERVING) before it has logged in, retrying the login with a
                # backoff of up to 30 s while the feed is still starting. Under load that start-up
                # ran late enough to use up the batch wait below when it was counted from here.
                # So the suite is up once the ingest is live, and the batches are counted from then:
                # a slow start fails only past its own bound, broken tracing still fails the count.
                wait_until_blocking(
                    lambda: ingest_live(suite_ports.addresses["AMI_INGEST_ADDR"]),
                    within=STARTUP_SECONDS,
                    what="ami_ingest live on the demo feed",
                    interval=0.5,
                    detail=suite.output,
                )
                job_id = call(f"{base}/api/queues/workflow/jobs", {"name": "statistics_aggregation", "data": {}})[
                    "data"
                ]["jobId"]
                call(f"{base}/api/queue-status/sync/status")

                def job_traced() -> bool:
                    return any(s.attributes.get("queue.job_id") == job_id for s in receiver.snapshot())

                wait_until_blocking(job_traced, within=60, what="the job's run span", interval=0.2, detail=suite.output)
                # Long enough for every background loop to have run many times (the queue probe
                # every 0.5 s, worker claims, leases, health checks): ten of the demo feed's batches.
                wait_until_blocking(
                    lambda: len(Traces(receiver.snapshot()).named("ingest.batch")) >= BATCHES_AT_LEAST,
                    within=BATCHES_WITHIN_SECONDS,
                    what=f"{BATCHES_AT_LEAST} AMI batches traced",
                    interval=0.2,
                    detail=suite.output,
                )
                wait_until_blocking(
                    lambda: Traces(receiver.snapshot()).named("status.watch.fanout"),
                    within=60,
                    what="an AMI batch fanned out to watchers",
                    interval=0.2,
                    detail=lambda: str(Counter((s.service, s.name, s.kind) for s in receiver.snapshot())),
                )
            finally:
                # Ctrl-C, as a developer stops `make run`: the runner stops every process it started
                # (killing only the runner, as a failed test's cleanup would, leaves them running).
                if suite.poll() is None:
                    suite.send_signal(signal.SIGINT)
                exit_code = suite.wait_exit(timeout=30)
            assert exit_code == 0, suite.output()

    traces = Traces(receiver.snapshot())
    (run,) = [s for s in traces.spans if s.attributes.get("queue.job_id") == job_id and s.kind == "consumer"]
    assert run.name == "queue.run statistics_aggregation"
    assert traces.services_up_from(run) == ["workflow_worker", "queue_admin", "gateway"]
    assert [s.name for s in traces.ancestors(run)][-1].startswith("POST /api/queues/")

    (sync_status,) = traces.named("/switchboard.status.v1.StatusService/GetSyncStatus", "status")
    assert traces.services_up_from(sync_status) == ["status", "gateway"]

    applies = traces.with_parent(traces.named("status.ingest.apply", "status"))
    assert applies
    for apply in applies:
        parent = traces.by_id[apply.parent_id]
        assert (parent.name, parent.service, parent.kind) == ("ingest.batch", "ami_ingest", "producer")
    fanouts = traces.with_parent(traces.named("status.watch.fanout", "status"))
    assert fanouts
    for fanout in fanouts:
        # Delivered straight after the apply or read from the change stream: the apply's child.
        assert traces.by_id[fanout.parent_id].name == "status.ingest.apply"

    background = traces.background_traces()
    roots = sorted({s.service + " " + s.name for t in background for s in traces.by_trace[t] if s.root})
    share = len(background) / len(traces.by_trace)
    assert share <= BACKGROUND_SHARE_AT_MOST, f"{len(background)} of {len(traces.by_trace)} traces: {roots}"
    spans = sum(len(traces.by_trace[t]) for t in background)
    assert spans / len(traces.spans) <= BACKGROUND_SHARE_AT_MOST, f"{spans} of {len(traces.spans)} spans: {roots}"
