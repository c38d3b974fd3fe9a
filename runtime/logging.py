"""Structured logs: one JSON object per line on stdout, carrying the current trace.

Call :func:`configure_logging` once at start (``run_service`` does it), then log through
structlog with short event names a human can scan and the facts as fields::

    log = get_logger(__name__)
    log.info("rpc finished", method="/switchboard.status.v1.StatusService/GetOperator",
             code="OK", duration_ms=1.7)

Every line has ``timestamp`` (UTC ISO-8601), ``level``, ``logger``, ``event`` and, inside an
OpenTelemetry span, ``trace_id`` and ``span_id`` (hex, as trace back-ends print them).
Records from the standard library (``logging.getLogger``: grpc, asyncio, arq, uvicorn…) go
through the same renderer, so a process never mixes formats. ``LOG_FORMAT=console`` swaps
JSON for aligned human text when reading a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from runtime.redaction import redact_event

__all__ = ["add_trace_context", "bind_context", "configure_logging", "get_logger"]


def add_trace_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: add the current span's ``trace_id``/``span_id`` when one is recording."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", format(span_context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(span_context.span_id, "016x"))
    return event_dict


def _drop_color_message(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # uvicorn duplicates every access line with ANSI colours under this key.
    event_dict.pop("color_message", None)
    return event_dict


def _add_service(service: str) -> Any:
    def add_service(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


_HEADLINE = ("timestamp", "level", "service", "logger", "event")


def _headline_first(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # JSON keeps insertion order: put the fields a human scans first at the start of the line.
    ordered = {key: event_dict.pop(key) for key in _HEADLINE if key in event_dict}
    ordered.update(event_dict)
    return ordered


def configure_logging(
    level: str = "INFO",
    *,
    fmt: str = "json",
    service: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging to one JSON-lines handler at ``level``.

    ``service`` is bound to every line (``"service": "status"``) so merged logs stay readable.
    Safe to call again (tests, reconfiguration): the root handler is replaced, not added.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        _drop_color_message,
    ]
    if service:
        shared.insert(0, _add_service(service))
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        exc_processors: list[Any] = []
    else:
        renderer = structlog.processors.JSONRenderer()
        # Structured tracebacks without frame locals: locals can hold payloads and secrets.
        exc_processors = [
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            _headline_first,
        ]

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exc_processors,
            redact_event,  # last before rendering: the exception text is a string by now too
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries stay at WARNING unless the whole process is at DEBUG.
    quiet = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in ("asyncio", "grpc._cython", "urllib3", "httpx", "httpcore", "aiosqlite"):
        logging.getLogger(name).setLevel(quiet)
    logging.captureWarnings(False)


def bind_context(**values: Any) -> None:
    """Bind fields to every following line of this task/context (e.g. ``job_id``)."""
    structlog.contextvars.bind_contextvars(**values)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``name`` becomes the ``logger`` field."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
