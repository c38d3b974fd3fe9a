"""The media refusals keep their precise HTTP statuses through the shared error tables."""

from __future__ import annotations

import grpc

from runtime.errors import PayloadTooLarge, SwitchboardError, UnsupportedMediaType, grpc_status_for, http_status_for
from runtime.grpc_errors import details_from_trailers, grpc_error_for
from services.media.domain.pipeline import CorruptImage


def http_status_across_grpc(error: SwitchboardError) -> int:
    """What the gateway answers for ``error`` raised in a backend: code and trailer, decoded."""
    code, _, trailers = grpc_error_for(error)
    return http_status_for(code, details_from_trailers(trailers).get("reason"))


def test_an_unsupported_image_is_invalid_argument_on_grpc_and_415_on_http() -> None:
    error = UnsupportedMediaType("file", "not an image")
    assert grpc_status_for(error) is grpc.StatusCode.INVALID_ARGUMENT
    assert http_status_across_grpc(error) == 415


def test_an_image_over_the_pixel_limit_is_resource_exhausted_on_grpc_and_413_on_http() -> None:
    error = PayloadTooLarge("too many pixels")
    assert grpc_status_for(error) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert http_status_across_grpc(error) == 413


def test_a_corrupt_image_is_a_permanent_failure() -> None:
    assert grpc_status_for(CorruptImage("truncated")) is grpc.StatusCode.FAILED_PRECONDITION


def test_other_reasons_keep_the_canonical_mapping() -> None:
    assert http_status_for(grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument") == 400
    assert http_status_for(grpc.StatusCode.RESOURCE_EXHAUSTED) == 429
