"""The upload route's body streamed onto the media service's ``Upload`` RPC, never held whole.

The multipart body is parsed while it arrives (:mod:`gateway.multipart_stream`); the form fields
sent before ``file`` fill in what the query left empty, then the file's bytes go on chunk by
chunk. A ``Content-Length`` over the limit is refused before a byte is read, a file passing it
the moment it does (413 either way, naming the limit).

``keepMetadata`` (``true`` | ``false``, default false) is the contract's ``keep_exif``: the
variants keep the original's EXIF (orientation reset) and XMP instead of losing all metadata.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from switchboard.media.v1 import media_pb2, media_pb2_grpc

from gateway.multipart_stream import FieldPart, FilePart, boundary_of, parts
from runtime.errors import InvalidArgument, PayloadTooLarge

__all__ = ["KEEP_METADATA", "MULTIPART_OVERHEAD", "stream_upload"]

KEEP_METADATA = "keepMetadata"
_BOOLEANS = {"": False, "false": False, "true": True}

MULTIPART_OVERHEAD = 64 * 1024
"""Room for the multipart framing and the small fields around the file in a Content-Length."""


async def stream_upload(
    request: Request,
    stub: media_pb2_grpc.MediaServiceAsyncStub,
    fields: dict[str, str],
    *,
    limit: int,
    rpc_seconds: float,
) -> media_pb2.UploadResponse:
    """Stream ``request``'s multipart body to ``stub.Upload``; its answer. ``fields``
    (``entityType``, ``ownerId``, ``keepMetadata``) are taken from the form where they are still empty."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit, int(declared))
    boundary = boundary_of(request.headers.get("content-type", ""))
    body = parts(request.stream(), boundary)
    file_part, first_chunk = await _file_part(body, fields)
    refusals: list[BaseException] = []
    messages = _upload_messages(
        _metadata(file_part, fields), _file_chunks(file_part, first_chunk, body), limit, refusals
    )
    # The request iterator style (not call.write()): a stream-unary client interceptor such as
    # OpenTelemetry's awaits the call's status before handing the call back, so writes would wait forever.
    call = stub.Upload(messages, timeout=rpc_seconds)
    try:
        answer: media_pb2.UploadResponse = await call
    except BaseException:
        call.cancel()
        if refusals:  # the gateway's own refusal (over the limit, a malformed body) cancelled the call
            raise refusals[0] from None
        raise
    return answer


def _too_large(limit: int, received: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"upload is over the limit of {limit} bytes", details={"limit": limit, "received": received})


async def _file_part(
    body: AsyncIterator[tuple[FieldPart | FilePart, bytes]], fields: dict[str, str]
) -> tuple[FilePart, bytes]:
    """Read the form up to the first chunk of ``file``, taking the ``fields`` sent before it."""
    async for part, data in body:
        if isinstance(part, FieldPart):
            if part.name in fields and not fields[part.name]:
                fields[part.name] = part.value
        elif part.name == "file":
            return part, data
    raise InvalidArgument("file", "the form has no `file` field")


async def _file_chunks(
    part: FilePart, first: bytes, body: AsyncIterator[tuple[FieldPart | FilePart, bytes]]
) -> AsyncIterator[bytes]:
    """Every chunk of ``part``'s bytes (the rest of the form is read past, not kept)."""
    yield first
    async for other, data in body:
        if other is part:
            yield data


async def _upload_messages(
    metadata: media_pb2.UploadRequest, chunks: AsyncIterator[bytes], limit: int, refusals: list[BaseException]
) -> AsyncIterator[media_pb2.UploadRequest]:
    """The Upload stream: metadata, then the chunks, refused the moment they pass ``limit``. A
    refusal is kept in ``refusals`` (gRPC cancels a call whose request iterator raises)."""
    yield metadata
    received = 0
    try:
        async for data in chunks:
            if not data:
                continue
            received += len(data)
            if received > limit:
                raise _too_large(limit, received)
            yield media_pb2.UploadRequest(chunk=data)
    except Exception as exc:
        refusals.append(exc)
        raise


def _metadata(part: FilePart, fields: dict[str, str]) -> media_pb2.UploadRequest:
    return media_pb2.UploadRequest(
        metadata=media_pb2.UploadMetadata(
            filename=part.filename,
            content_type=part.content_type,
            owner_id=fields["ownerId"],
            entity_type=fields["entityType"],
            keep_exif=_keep_metadata(fields.get(KEEP_METADATA, "")),
        )
    )


def _keep_metadata(value: str) -> bool:
    keep = _BOOLEANS.get(value)
    if keep is None:
        raise InvalidArgument(KEEP_METADATA, f"must be true or false, not {value[:40]!r}")
    return keep
