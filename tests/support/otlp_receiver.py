"""A small OTLP trace receiver on loopback, as a collector would be: OTLP/gRPC and OTLP/HTTP.

``OtlpReceiver`` serves the gRPC ``TraceService`` on ``grpc_endpoint`` and ``POST /v1/traces``
(protobuf) on ``http_endpoint``; every span exported to either lands in ``spans`` as a
:class:`ReceivedSpan`. Tests read the trace edges from them, as the OpenTelemetry demo's
telemetry tests do.

``answer_delay_seconds`` makes it a slow collector: each gRPC export is answered that long after
it arrived, and its spans count as received only if the exporter was still waiting for the
answer (an exporter that gave up, or a process that exited, delivered nothing).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

KINDS = {
    trace_pb2.Span.SPAN_KIND_INTERNAL: "internal",
    trace_pb2.Span.SPAN_KIND_SERVER: "server",
    trace_pb2.Span.SPAN_KIND_CLIENT: "client",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "producer",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "consumer",
}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    resource: dict[str, str]
    attributes: dict[str, str]
    links: tuple[str, ...]

    @property
    def root(self) -> bool:
        return not self.parent_id


def _value(any_value: Any) -> str:
    field = any_value.WhichOneof("value")
    return "" if field is None else str(getattr(any_value, field))


class OtlpReceiver:
    def __init__(self, *, answer_delay_seconds: float = 0.0) -> None:
        self.answer_delay_seconds = answer_delay_seconds
        self.spans: list[ReceivedSpan] = []
        self.requests: defaultdict[str, int] = defaultdict(int)
        """Export requests received, by protocol (``grpc``, ``http``)."""
        self.arrivals = 0
        """gRPC export requests that arrived, answered or not."""
        self._lock = threading.Lock()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._grpc)
        grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self.grpc_endpoint = f"http://127.0.0.1:{grpc_port}"
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.http_endpoint = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="otlp-http", daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self._grpc.start()
        self._http_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None)

    def receive(self, request: trace_service_pb2.ExportTraceServiceRequest, protocol: str) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=resource.get("service.name", ""),
                            name=span.name,
                            kind=KINDS.get(span.kind, "unspecified"),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            resource=resource,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=tuple(link.span_id.hex() for link in span.links),
                        )
                    )
        with self._lock:
            self.spans.extend(received)
            self.requests[protocol] += 1

    def arrived(self) -> None:
        with self._lock:
            self.arrivals += 1

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.receiver.arrived()
        answer_at = time.monotonic() + self.receiver.answer_delay_seconds
        while time.monotonic() < answer_at:
            if not context.is_active():
                return trace_service_pb2.ExportTraceServiceResponse()  # nobody is waiting any more
            time.sleep(0.02)
        if context.is_active():
            self.receiver.receive(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


def _handler_for(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                self.send_response(404)
                self.end_headers()
                return
            receiver.receive(trace_service_pb2.ExportTraceServiceRequest.FromString(body), "http")
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
