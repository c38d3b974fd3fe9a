"""Deliberate errors cross gRPC as their status code plus a rich-error trailer a client can read."""

from __future__ import annotations

import grpc

from runtime.errors import InvalidArgument, NotFound, TransientError
from runtime.grpc_errors import DETAILS_KEY, details_from_trailers, grpc_error_for


def test_invalid_argument_carries_the_field() -> None:
    code, message, trailers = grpc_error_for(InvalidArgument("queue", "must not be empty"))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert message == "queue: must not be empty"
    assert trailers[0][0] == DETAILS_KEY
    assert details_from_trailers(trailers) == {
        "reason": "InvalidArgument",
        "field": "queue",
        "fieldViolations": [{"field": "queue", "description": "must not be empty"}],
    }


def test_details_are_strings_on_the_wire() -> None:
    error = NotFound("operator 7001 not found", details={"operator": "7001", "queues": ["a", "b"], "n": 2})
    code, _, trailers = grpc_error_for(error)
    assert code is grpc.StatusCode.NOT_FOUND
    assert details_from_trailers(trailers) == {
        "reason": "NotFound",
        "operator": "7001",
        "queues": '["a", "b"]',
        "n": "2",
    }


def test_subclass_uses_the_nearest_mapped_code() -> None:
    code, _, _ = grpc_error_for(TransientError("redis timed out"))
    assert code is grpc.StatusCode.UNAVAILABLE


def test_non_ascii_message_stays_a_valid_header() -> None:
    _, message, _ = grpc_error_for(NotFound("очередь не найдена"))
    assert message.isascii()


def test_trailers_without_details_give_an_empty_dict() -> None:
    assert details_from_trailers(None) == {}
    assert details_from_trailers((("other", "x"),)) == {}
    assert details_from_trailers(((DETAILS_KEY, b"\xff\xff not a proto"),)) == {}
