"""Checks on an upload while its bytes arrive, so a refusal comes as early as possible.

:class:`UploadCheck` is fed every chunk: it refuses the upload as soon as the size passes the
limit (413), as soon as enough bytes show it is no supported image (415), and as soon as the
header's declared dimensions are over the pixel limit (413) — long before the last byte.
It also keeps the running SHA-256 (duplicate detection).
"""

from __future__ import annotations

import hashlib

from runtime.errors import PayloadTooLarge
from services.media.domain.pipeline import check_pixels
from services.media.domain.sniff import HEADER_PROBE_BYTES, ImageKind, detect_kind, header_size, not_an_image

__all__ = ["HEADER_LIMIT_BYTES", "UploadCheck"]

HEADER_LIMIT_BYTES = 256 * 1024
"""Bytes kept to find the dimensions in (a JPEG's frame header may follow large EXIF segments)."""


class UploadCheck:
    def __init__(self, *, max_bytes: int, max_pixels: int, declared_size: int = 0) -> None:
        if declared_size > max_bytes:
            raise self._too_large(declared_size, max_bytes)
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.size = 0
        self.kind: ImageKind | None = None
        self.dimensions: tuple[int, int] | None = None
        self._head = bytearray()
        self._sha256 = hashlib.sha256()

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise self._too_large(self.size, self.max_bytes)
        self._sha256.update(chunk)
        if self.dimensions is None and len(self._head) < HEADER_LIMIT_BYTES:
            self._head += chunk[: HEADER_LIMIT_BYTES - len(self._head)]
            self._inspect_head()

    def finish(self) -> str:
        """The hex SHA-256 of the whole upload; refuses an empty or unrecognisable one."""
        if self.size == 0:
            raise not_an_image("the file is empty")
        if self.kind is None:  # shorter than the probe: judge what there is
            self.kind = detect_kind(bytes(self._head))
        if self.kind is None:
            raise not_an_image("not a JPEG, PNG, WebP or GIF image (judged from its bytes)")
        return self._sha256.hexdigest()

    def _inspect_head(self) -> None:
        if self.kind is None:
            if len(self._head) < HEADER_PROBE_BYTES:
                return
            self.kind = detect_kind(bytes(self._head[:HEADER_PROBE_BYTES]))
            if self.kind is None:
                raise not_an_image("not a JPEG, PNG, WebP or GIF image (judged from its bytes)")
        self.dimensions = header_size(self.kind, bytes(self._head))
        if self.dimensions is not None:
            check_pixels(*self.dimensions, self.max_pixels)

    @staticmethod
    def _too_large(size: int, limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"upload is over the limit of {limit} bytes", details={"limit": limit, "received": size})
