"""Between the contract's messages (media.v1) and the service's own types."""

from __future__ import annotations

from collections.abc import Mapping

from switchboard.media.v1 import media_pb2

from runtime.errors import InvalidArgument
from services.media.domain.records import MediaRecord, MediaState
from services.media.domain.variants import Fit, OutputFormat, VariantSpec

_STATE_TO_PB = {
    MediaState.PENDING: media_pb2.MEDIA_STATE_PENDING,
    MediaState.PROCESSING: media_pb2.MEDIA_STATE_PROCESSING,
    MediaState.READY: media_pb2.MEDIA_STATE_READY,
    MediaState.FAILED: media_pb2.MEDIA_STATE_FAILED,
    MediaState.DELETED: media_pb2.MEDIA_STATE_DELETED,
}
_STATE_FROM_PB = {pb: state for state, pb in _STATE_TO_PB.items()}
_FORMATS = {
    media_pb2.IMAGE_FORMAT_UNSPECIFIED: OutputFormat.WEBP,
    media_pb2.IMAGE_FORMAT_WEBP: OutputFormat.WEBP,
    media_pb2.IMAGE_FORMAT_JPEG: OutputFormat.JPEG,
    media_pb2.IMAGE_FORMAT_PNG: OutputFormat.PNG,
}
_FITS = {
    media_pb2.VARIANT_FIT_UNSPECIFIED: Fit.FIT,
    media_pb2.VARIANT_FIT_FIT: Fit.FIT,
    media_pb2.VARIANT_FIT_COVER: Fit.COVER,
}


def state_to_pb(state: MediaState) -> media_pb2.MediaState.ValueType:
    return _STATE_TO_PB[state]


def state_from_pb(value: int) -> MediaState | None:
    """``None`` for UNSPECIFIED (no filter); InvalidArgument for an unknown number."""
    if value == media_pb2.MEDIA_STATE_UNSPECIFIED:
        return None
    state = _STATE_FROM_PB.get(value)  # type: ignore[call-overload]
    if state is None:
        raise InvalidArgument("state", f"unknown media state {value}")
    return state


def variant_spec(spec: media_pb2.VariantSpec) -> VariantSpec:
    output = _FORMATS.get(spec.format)
    if output is None:
        raise InvalidArgument("variants.format", f"format {spec.format} cannot be produced (WebP, JPEG or PNG)")
    fit = _FITS.get(spec.fit)
    if fit is None:
        raise InvalidArgument("variants.fit", f"unknown fit {spec.fit}")
    return VariantSpec(spec.name, spec.max_width, spec.max_height, fit, output, spec.quality or 85)


def media_to_pb(record: MediaRecord, urls: Mapping[str, str] | None = None) -> media_pb2.Media:
    """``urls``: variant name → where to fetch it (a presigned S3 URL); a variant without one has
    no ``url`` and is served by the gateway."""
    urls = urls or {}
    return media_pb2.Media(
        media_id=record.media_id,
        filename=record.filename,
        content_type=record.content_type,
        size_bytes=record.size_bytes,
        width=record.width,
        height=record.height,
        state=state_to_pb(record.state),
        variants=[
            media_pb2.Variant(
                name=v.name,
                content_type=v.content_type,
                width=v.width,
                height=v.height,
                size_bytes=v.size_bytes,
                storage_key=v.storage_key,
                url=urls.get(v.name, ""),
            )
            for v in record.variants
        ],
        sha256=record.sha256,
        owner_id=record.owner_id,
        labels=dict(record.labels),
        synced_to_s3=record.synced_to_s3,
        error=record.error,
        created_at_ms=record.created_at_ms,
        updated_at_ms=record.updated_at_ms,
        entity_type=record.entity_type,
        job_id=record.job_id,
    )
