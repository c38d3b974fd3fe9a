"""A probe process built on runtime.grpc_server (tests/runtime/probe_server.py), on free ports."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from devsupport.auth import sync_channel
from devsupport.ports import free_ports
from devsupport.procs import ServiceProcess
from devsupport.redis_server import RedisServer

PROBE_MODULE = "tests.runtime.probe_server"
PROBE_SERVICE = "test.runtime.v1.Probe"


@dataclass
class Probe:
    process: ServiceProcess
    address: str
    metrics_port: int

    def channel(self) -> grpc.Channel:
        return sync_channel(self.address)

    def call(self, method: str, request: bytes = b"", **kwargs: Any) -> bytes:
        with self.channel() as channel:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{PROBE_SERVICE}/{method}")
            reply: bytes = call(request, timeout=5, **kwargs)
            return reply

    def log_lines(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed; fails the test if one is not JSON."""
        lines = []
        for raw in self.process.stdout.splitlines():
            if raw == "hook ran":
                continue
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                pytest.fail(f"log line is not JSON: {raw!r}\n{self.process.output()}")
        return lines


StartProbe = Callable[..., Probe]


def probe_starter(redis_server: RedisServer, started: list[ServiceProcess]) -> StartProbe:
    def _start(*, wait: bool = True, **env: str) -> Probe:
        grpc_port, metrics_port = free_ports(2)
        address = f"127.0.0.1:{grpc_port}"
        environment = {
            "REDIS_URL": redis_server.url,
            "PROBE_ADDR": address,
            "METRICS_PORT": str(metrics_port),
            "HEALTH_CHECK_INTERVAL_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            **env,
        }
        process = ServiceProcess.module(PROBE_MODULE, env=environment)
        started.append(process)
        process.start()
        if wait:
            process.wait_serving(address, timeout=20)
        return Probe(process, address, metrics_port)

    return _start
