"""A multipart/form-data body as a stream of parts, parsed while it arrives (python-multipart).

Starlette's ``request.form()`` reads the whole body before the route runs; an upload route that
must refuse early and forward bytes as they come instead iterates :func:`parts`: a
:class:`FieldPart` for each text field (small, collected whole) and, for a file, a
:class:`FilePart` followed by its bytes as they are parsed. Only one chunk of the
body is in memory at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from runtime.errors import InvalidArgument

__all__ = ["FieldPart", "FilePart", "boundary_of", "parts"]

MAX_FIELD_BYTES = 4096


@dataclass
class FieldPart:
    name: str
    value: str


@dataclass
class FilePart:
    name: str
    filename: str
    content_type: str


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidArgument("body", "expected multipart/form-data with a boundary")
    return boundary


class _Events:
    """python-multipart's callbacks, turned into a list of events drained after each write."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._field(data[start:end]),
            "on_header_value": lambda data, start, end: self._value(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self.events.append(("data", bytes(data[start:end]))),
            "on_part_end": lambda: self.events.append(("end", None)),
        }

    def _begin(self) -> None:
        self._headers = {}

    def _field(self, data: bytes) -> None:
        self._header_field += data

    def _value(self, data: bytes) -> None:
        self._header_value += data

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self.events.append(("field", FieldPart(name, "")))
        else:
            content_type = self._headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
            self.events.append(("file", FilePart(name, filename.decode("utf-8", "replace"), content_type)))


async def parts(body: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[tuple[FieldPart | FilePart, bytes]]:
    """``(part, data)`` pairs in body order: for a field, its whole value once; for a file, one
    pair per chunk of its bytes (``b""`` marks its end)."""
    collector = _Events()
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    current: FieldPart | FilePart | None = None
    field_bytes = bytearray()
    async for chunk in body:
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidArgument("body", f"malformed multipart body: {exc}") from None
        events, collector.events = collector.events, []
        for kind, payload in events:
            if kind in ("field", "file"):
                current = payload
                field_bytes.clear()
            elif kind == "data" and isinstance(current, FilePart):
                yield current, payload
            elif kind == "data" and isinstance(current, FieldPart):
                field_bytes += payload
                if len(field_bytes) > MAX_FIELD_BYTES:
                    raise InvalidArgument(current.name or "body", f"form field over {MAX_FIELD_BYTES} bytes")
            elif kind == "end" and current is not None:
                if isinstance(current, FieldPart):
                    current.value = field_bytes.decode("utf-8", "replace")
                yield current, b""
                current = None
    parser.finalize()
