"""A real process on runtime.grpc_server: health, reflection, errors, logs, metrics and the SIGTERM drain."""

from __future__ import annotations

import concurrent.futures
import re
import signal

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from devsupport.auth import sync_channel
from devsupport.ports import free_port
from devsupport.procs import health_status
from devsupport.redis_server import RedisServer
from devsupport.waiting import wait_until_blocking
from tests.runtime.harness import PROBE_SERVICE, StartProbe

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def wait_for_status(address: str, expected: str, service: str = "", timeout: float = 10.0) -> str:
    """The health status once it is ``expected``, or the last one seen after ``timeout``."""
    try:
        wait_until_blocking(
            lambda: health_status(address, service) == expected, within=timeout, what=f"health {expected}"
        )
        return expected
    except TimeoutError:
        return health_status(address, service)


def new_call_refused(address: str) -> bool:
    """A new call on a new connection is refused (UNAVAILABLE); False while it is still served
    or the answer is not yet clear."""
    with sync_channel(address) as fresh:
        try:
            echo: grpc.UnaryUnaryMultiCallable[bytes, bytes] = fresh.unary_unary(f"/{PROBE_SERVICE}/Echo")
            echo(b"x", timeout=2)
        except grpc.RpcError as error:
            code = error.code()
        else:
            return False
    if code is grpc.StatusCode.CANCELLED:
        return False  # it raced the server's switch to refusing (reset mid-way): look again
    assert code is grpc.StatusCode.UNAVAILABLE
    return True


def test_sigterm_refuses_new_rpcs_lets_the_in_flight_one_finish_and_exits_within_5s(start_probe: StartProbe) -> None:
    probe = start_probe()
    with probe.channel() as channel, concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{PROBE_SERVICE}/Slow")
        in_flight = pool.submit(slow, b"1.5", timeout=10)
        wait_until_blocking(
            lambda: "slow started" in probe.process.stdout,
            within=10,
            what="the slow call runs",
            detail=probe.process.output,
        )

        probe.process.send_signal(signal.SIGTERM)
        wait_until_blocking(lambda: new_call_refused(probe.address), within=10, what="new calls refused")
        assert in_flight.result(timeout=5) == b"done"
        returncode = probe.process.wait_exit(timeout=10)

    assert returncode == 0, probe.process.output()
    events = [line["event"] for line in probe.log_lines()]
    assert events.index("server stopping") < events.index("server stopped")
    assert "hook ran" in probe.process.stdout


def test_health_follows_redis_outage_and_recovery(start_probe: StartProbe, redis_server: RedisServer) -> None:
    probe = start_probe()
    assert health_status(probe.address) == "SERVING"
    assert health_status(probe.address, PROBE_SERVICE) == "SERVING"

    redis_server.stop()
    assert wait_for_status(probe.address, "NOT_SERVING") == "NOT_SERVING"
    assert health_status(probe.address, PROBE_SERVICE) == "NOT_SERVING"

    redis_server.start()
    assert wait_for_status(probe.address, "SERVING") == "SERVING"
    failing = [line for line in probe.log_lines() if line.get("status") == "NOT_SERVING"]
    assert failing
    assert "redis" in failing[0]["failing"]


def test_unreachable_redis_starts_not_serving(start_probe: StartProbe) -> None:
    probe = start_probe(wait=False, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert wait_for_status(probe.address, "NOT_SERVING", timeout=15) == "NOT_SERVING"
    assert probe.process.poll() is None


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"REDIS_URL": "http://x"},
            "config error: REDIS_URL: must be a redis://, rediss:// or unix:// URL (got 'http://x')",
        ),
        ({"PROBE_ADDR": "127.0.0.1:99999"}, "config error: PROBE_ADDR: port must be 1-65535 (got '127.0.0.1:99999')"),
    ],
)
def test_bad_setting_stops_the_process_with_one_line(start_probe: StartProbe, env: dict[str, str], line: str) -> None:
    probe = start_probe(wait=False, **env)
    assert probe.process.wait_exit(timeout=15) == 2
    assert probe.process.stderr.splitlines() == [line], probe.process.output()
    assert probe.process.stdout == ""


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """A minimal OTLP/gRPC trace collector that keeps what it receives."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: object) -> object:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def resources(self) -> list[dict[str, str]]:
        """The resource attributes of every batch of spans received."""
        return [
            {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for request in self.requests
            for resource_spans in request.resource_spans
        ]

    def spans(self) -> list[tuple[str, str, str]]:
        """(service.name, span name, trace id hex) of everything received."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append((attributes.get("service.name", ""), span.name, span.trace_id.hex()))
        return found


def test_spans_are_exported_over_otlp_with_the_version_environment_and_pod_on_their_resource(
    start_probe: StartProbe,
) -> None:
    collector = Collector()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        probe = start_probe(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
            # What the image (ENV SERVICE_VERSION, SERVICE_REVISION) and the pod (the overlay's
            # DEPLOYMENT_ENVIRONMENT, the Downward API's OTEL_RESOURCE_ATTRIBUTES) set.
            SERVICE_VERSION="1.4.0",
            SERVICE_REVISION="0123abc",
            DEPLOYMENT_ENVIRONMENT="staging",
            OTEL_RESOURCE_ATTRIBUTES="k8s.pod.name=probe-7d9f-x2k4p,k8s.namespace.name=switchboard,k8s.node.name=n1",
        )
        trace_id = "0af7651916cd43dd8448eb211c80319c"
        probe.call("Echo", b"traced", metadata=(("traceparent", f"00-{trace_id}-b7ad6b7169203331-01"),))
        # Spans leave in batches; the drain flushes what is pending before exit.
        assert probe.process.stop(signal.SIGTERM, timeout=10) == 0
        spans = collector.spans()
    finally:
        server.stop(0)
    assert ("probe", f"/{PROBE_SERVICE}/Echo", trace_id) in spans, spans
    expected = {
        "service.name": "probe",
        "service.version": "1.4.0",
        "vcs.ref.head.revision": "0123abc",
        "deployment.environment": "staging",
        "k8s.pod.name": "probe-7d9f-x2k4p",
        "k8s.namespace.name": "switchboard",
        "k8s.node.name": "n1",
    }
    for resource in collector.resources():
        assert resource.items() >= expected.items(), resource
    assert not [name for _, name, _ in spans if "Health" in name]
