"""Trace context across the queue, through runtime.telemetry's one propagation path.

The producer stores :func:`runtime.telemetry.inject_context` in the job's options (``c``); the
worker runs the job inside :func:`runtime.telemetry.use_context` of that carrier, so the job's
run span is a child of the enqueue span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from runtime.telemetry import inject_context, use_context

TRACER_NAME = "switchboard.queue"


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)


def inject() -> dict[str, str]:
    """The current trace context as a W3C carrier; empty when nothing is being traced."""
    return inject_context()


def job_context(carrier: Mapping[str, str] | None) -> contextlib.AbstractContextManager[Any]:
    """The enqueuer's context made current for a job's run; nothing to attach for an untraced job."""
    return use_context(carrier) if carrier else contextlib.nullcontext()
