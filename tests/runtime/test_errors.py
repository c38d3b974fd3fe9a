"""The error hierarchy: what each error carries, its gRPC status, and the HTTP status of a gRPC code."""

from __future__ import annotations

import grpc
import pytest

from runtime.errors import (
    HTTP_STATUS,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermanentError,
    ResourceExhausted,
    SwitchboardError,
    TransientError,
    Unavailable,
    Unimplemented,
    UnsupportedMediaType,
    grpc_status_for,
    http_status_for,
)


def test_an_error_carries_its_message_and_a_copy_of_its_details() -> None:
    details = {"operator": "PJSIP/1001"}
    error = NotFound("operator PJSIP/1001 not found", details=details)
    details["operator"] = "changed later"
    assert (str(error), error.message, error.details) == (
        "operator PJSIP/1001 not found",
        "operator PJSIP/1001 not found",
        {"operator": "PJSIP/1001"},
    )


def test_an_error_without_details_has_empty_details() -> None:
    assert Unavailable("redis unreachable").details == {}


def test_invalid_argument_names_the_field_and_the_problem() -> None:
    error = InvalidArgument("queue", "must not be empty", details={"limit": 64})
    assert (error.field, error.problem, error.message) == ("queue", "must not be empty", "queue: must not be empty")
    assert error.details == {"field": "queue", "limit": 64}


def test_invalid_argument_without_extra_details_names_only_the_field() -> None:
    assert InvalidArgument("data", "too big").details == {"field": "data"}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgument("f", "bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (UnsupportedMediaType("content_type", "image/tiff"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (ResourceExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (PayloadTooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (TransientError("x"), grpc.StatusCode.UNAVAILABLE),
        (PermanentError("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (Unimplemented("x"), grpc.StatusCode.UNIMPLEMENTED),
    ],
)
def test_each_error_has_its_grpc_status(error: SwitchboardError, code: grpc.StatusCode) -> None:
    assert grpc_status_for(error) is code


def test_a_subclass_of_a_mapped_error_takes_its_parents_status() -> None:
    class QueuePaused(FailedPrecondition):
        pass

    assert grpc_status_for(QueuePaused("paused")) is grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("error", [RuntimeError("boom"), SwitchboardError("unmapped base"), KeyError("k")])
def test_any_other_exception_is_internal(error: BaseException) -> None:
    assert grpc_status_for(error) is grpc.StatusCode.INTERNAL


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.OK, 200),
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.INTERNAL, 500),
    ],
)
def test_a_grpc_code_has_its_canonical_http_status(code: grpc.StatusCode, status: int) -> None:
    assert http_status_for(code) == status


@pytest.mark.parametrize(
    ("code", "reason", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "UnsupportedMediaType", 415),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "PayloadTooLarge", 413),
    ],
)
def test_a_more_precise_error_refines_the_http_status(code: grpc.StatusCode, reason: str, status: int) -> None:
    assert http_status_for(code, reason) == status


def test_a_reason_without_its_own_http_status_keeps_the_codes() -> None:
    assert http_status_for(grpc.StatusCode.NOT_FOUND, "NotFound") == 404


def test_every_grpc_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(grpc.StatusCode)
