"""JSON in and out of Redis (never pickle): compact, strict, size-limited."""

from __future__ import annotations

import json
from typing import Any

from runtime.errors import InvalidArgument, PayloadTooLarge

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def encode_field(field_name: str, value: Any, limit: int | None = None) -> str:
    """Serialise ``value`` or raise InvalidArgument naming ``field_name`` (PayloadTooLarge, HTTP
    413, when it is over ``limit`` bytes)."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(field_name, f"not JSON-serialisable: {exc}") from None
    # UTF-8 takes at most 4 bytes a character: only text that could be over the limit is encoded.
    if limit is not None and len(text) * 4 > limit:
        size = len(text.encode())
        if size > limit:
            raise PayloadTooLarge(
                f"{field_name}: payload is {size} bytes, over the {limit}-byte limit",
                details={"field": field_name, "size": size, "limit": limit},
            )
    return text


def encode_result(value: Any) -> str:
    """A job's return value; anything JSON cannot hold is kept as its repr."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError):
        return _ENCODER.encode(repr(value))
