"""Calls into one running probe process: reflection, error mapping, JSON logs with trace ids, metrics."""

from __future__ import annotations

import re
import secrets
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from runtime.grpc_errors import details_from_rpc_error
from tests.runtime.harness import PROBE_SERVICE, Probe

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def scrape(probe: Probe) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{probe.metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def handled(text: str, method: str, code: str) -> float:
    pattern = (
        rf'^grpc_server_handled_total\{{grpc_code="{code}",grpc_method="{method}",'
        rf'grpc_service="{re.escape(PROBE_SERVICE)}",grpc_type="unary"\}} ([0-9.e+]+)$'
    )
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_health_watch_streams_the_current_status(shared_probe: Probe) -> None:
    with shared_probe.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=PROBE_SERVICE), timeout=5)
        first = next(watch)
        watch.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(shared_probe: Probe) -> None:
    with shared_probe.channel() as channel, pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services(shared_probe: Probe) -> None:
    with shared_probe.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
    names = {service.name for service in reply.list_services_response.service}
    assert names == {PROBE_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


def test_invalid_argument_maps_to_its_status_with_the_field(shared_probe: Probe) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        shared_probe.call("Invalid")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "queue: must not be empty"
    details = details_from_rpc_error(caught.value)
    assert details["reason"] == "InvalidArgument"
    assert details["field"] == "queue"
    assert details["fieldViolations"] == [{"field": "queue", "description": "must not be empty"}]


def test_unexpected_exception_is_internal_without_leaking_and_logged(shared_probe: Probe) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        shared_probe.call("Crash")
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"
    assert details_from_rpc_error(caught.value) == {}
    failed = [line for line in shared_probe.log_lines() if line["event"] == "rpc failed"]
    assert failed, shared_probe.process.output()
    assert failed[0]["level"] == "error"
    assert failed[0]["exception"][0]["exc_value"] == "secret internal state"
    assert "locals" not in failed[0]["exception"][0]["frames"][0]


def test_rpc_log_line_is_json_with_the_callers_trace_id(shared_probe: Probe) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    assert shared_probe.call("Echo", b"hello", metadata=(("traceparent", traceparent),)) == b"hello"

    lines = shared_probe.log_lines()
    finished = [line for line in lines if line["event"] == "rpc finished" and line.get("trace_id") == trace_id]
    assert len(finished) == 1, shared_probe.process.output()
    assert finished[0]["method"] == f"/{PROBE_SERVICE}/Echo"
    assert finished[0]["code"] == "OK"
    assert finished[0]["outcome"] == "ok"
    assert isinstance(finished[0]["duration_ms"], float)
    assert finished[0]["service"] == "probe"
    assert HEX16.match(finished[0]["span_id"])
    handler_lines = [line for line in lines if line["event"] == "echo called" and line["trace_id"] == trace_id]
    assert len(handler_lines) == 1


def test_call_without_trace_context_gets_a_fresh_trace_id(shared_probe: Probe) -> None:
    before = len(shared_probe.log_lines())
    assert shared_probe.call("Echo", b"again") == b"again"
    new = [line for line in shared_probe.log_lines()[before:] if line["event"] == "rpc finished"]
    assert new
    assert HEX32.match(new[-1]["trace_id"])


def test_metrics_count_rpcs_by_method_and_code(shared_probe: Probe) -> None:
    before = scrape(shared_probe)
    shared_probe.call("Echo", b"x")
    with pytest.raises(grpc.RpcError):
        shared_probe.call("Invalid")
    after = scrape(shared_probe)
    assert handled(after, "Echo", "OK") == handled(before, "Echo", "OK") + 1
    assert handled(after, "Invalid", "INVALID_ARGUMENT") == handled(before, "Invalid", "INVALID_ARGUMENT") + 1
    assert f'grpc_server_handling_seconds_bucket{{grpc_method="Echo",grpc_service="{PROBE_SERVICE}"' in after


def test_server_streaming_rpc_passes_through(shared_probe: Probe) -> None:
    with shared_probe.channel() as channel:
        count: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{PROBE_SERVICE}/Count")
        replies = list(count(b"4", timeout=5))
    assert replies == [b"0", b"1", b"2", b"3"]


def test_unknown_method_is_unimplemented(shared_probe: Probe) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        shared_probe.call("NoSuchMethod")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
