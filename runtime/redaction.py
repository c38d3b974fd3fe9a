"""Credentials out of everything printed: the password of any ``scheme://user:password@host`` URL.

Connection URLs (REDIS_URL, DATABASE_URL, S3 and SMTP endpoints …) carry their password inline,
and they reach output through settings errors, library exceptions and our own log fields alike.
:func:`redact` masks the password in one string; :func:`redact_event` is the structlog processor
that masks every string of a log line, exception text included, just before it is rendered.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

__all__ = ["redact", "redact_event"]

_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s/]*@")
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(rf"\1{MASK}@", text) if "://" in text else text


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every string in the line (nested ones too) with URL passwords masked."""
    for key, value in event_dict.items():
        event_dict[key] = _redacted(value)
    return event_dict
