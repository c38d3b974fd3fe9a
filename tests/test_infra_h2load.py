"""bench/_h2load.py: h2load's summary parsed, and real h2load driving a real gRPC server on
loopback, its answers checked byte for byte (h2load itself cannot see grpc-status)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from bench._h2load import H2LoadError, check_answers, grpc_frame, parse_output, start_h2load
from runtime.grpc_types import MethodHandler

ANSWER = b"\x0a\x03abc" * 100


H2LOAD_SUMMARY = """\
finished in 4.00s, 3240.25 req/s, 66.05MB/s
requests: 12961 total, 12961 started, 12961 done, 12961 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 12961 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 264.21MB (277046930) total, 47.94KB (49090) headers (space savings 96.28%), 330.24MB (346283575) data
"""


def test_the_h2load_summary_gives_rate_calls_and_answer_bytes() -> None:
    result = parse_output(H2LOAD_SUMMARY)
    assert (result.rate, result.requests, result.succeeded, result.data_bytes) == (3240.25, 12961, 12961, 346283575)


def test_an_h2load_output_without_its_summary_is_an_error() -> None:
    with pytest.raises(H2LoadError, match="unexpected h2load output"):
        parse_output("h2load: connection refused\n")


def test_a_grpc_request_body_is_the_message_behind_a_5_byte_prefix() -> None:
    assert grpc_frame(b"") == b"\x00\x00\x00\x00\x00"
    assert grpc_frame(b"\x08\x01") == b"\x00\x00\x00\x00\x02\x08\x01"


async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return ANSWER


async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no")
    raise AssertionError("abort raises")


@pytest.fixture
async def probe_address() -> AsyncIterator[str]:
    server = grpc.aio.server()
    handlers: dict[str, MethodHandler] = {
        "Get": grpc.unary_unary_rpc_method_handler(answer),
        "Refuse": grpc.unary_unary_rpc_method_handler(refuse),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.h2load.v1.Probe", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def test_good_answers_pass_the_byte_check(probe_address: str) -> None:
    await asyncio.to_thread(check_answers, probe_address, "/test.h2load.v1.Probe/Get", b"", answer_size=len(ANSWER))


@pytest.mark.parametrize(
    ("method", "size_offset"),
    [("/test.h2load.v1.Probe/Refuse", 0), ("/test.h2load.v1.Probe/Get", 1)],
    ids=["grpc-error-reply", "answer-of-another-size"],
)
async def test_answers_other_than_the_good_one_fail_the_byte_check(
    probe_address: str, method: str, size_offset: int
) -> None:
    with pytest.raises(H2LoadError, match="where good answers make"):
        await asyncio.to_thread(check_answers, probe_address, method, b"", answer_size=len(ANSWER) + size_offset)


async def test_a_timed_run_reports_the_rate_of_its_measured_seconds(probe_address: str) -> None:
    run = start_h2load(probe_address, "/test.h2load.v1.Probe/Get", b"", connections=2, seconds=1)
    result = await asyncio.to_thread(run.result)
    assert result.rate > 0
    assert result.succeeded == result.requests > 0
