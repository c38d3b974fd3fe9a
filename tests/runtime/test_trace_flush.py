"""A stopping process gives its last spans TRACE_FLUSH_SECONDS to reach the collector, and no longer."""

from __future__ import annotations

import signal

import pytest

from runtime.config import CommonSettings
from tests.runtime.harness import PROBE_SERVICE, StartProbe
from tests.support.otlp_receiver import OtlpReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ECHO = f"/{PROBE_SERVICE}/Echo"


def traced_echo_env(receiver: OtlpReceiver, flush_seconds: float) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
        # Only the exit flush can send the span: the batch processor's own schedule is far off.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "TRACE_FLUSH_SECONDS": str(flush_seconds),
    }


@pytest.mark.timeout(60)
def test_a_span_ended_just_before_sigterm_reaches_a_collector_slow_to_answer(start_probe: StartProbe) -> None:
    # The collector answers each export 1 s after it arrives: five times what the exit used to wait.
    with OtlpReceiver(answer_delay_seconds=1.0) as receiver:
        probe = start_probe(**traced_echo_env(receiver, flush_seconds=8.0))
        probe.call("Echo", b"last", metadata=(("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01"),))
        probe.process.send_signal(signal.SIGTERM)
        assert probe.process.wait_exit(timeout=30) == 0, probe.process.output()
        received = receiver.snapshot()

    assert [(s.name, s.trace_id, s.kind) for s in received if s.name == ECHO] == [(ECHO, TRACE_ID, "server")]


@pytest.mark.timeout(60)
def test_a_collector_that_never_answers_holds_the_exit_no_longer_than_the_flush_budget(
    start_probe: StartProbe,
) -> None:
    with OtlpReceiver(answer_delay_seconds=120.0) as receiver:
        probe = start_probe(**traced_echo_env(receiver, flush_seconds=3.0))
        probe.call("Echo", b"last")
        probe.process.send_signal(signal.SIGTERM)
        # Exit status 0 well before the collector would answer: the flush gave up on its budget.
        assert probe.process.wait_exit(timeout=20) == 0, probe.process.output()
        arrivals, received = receiver.arrivals, receiver.snapshot()

    assert arrivals >= 1  # the flush did send the span
    assert received == []  # and nobody waited for the answer


def test_the_flush_budget_is_a_bounded_setting() -> None:
    assert CommonSettings().trace_flush_seconds == 2.0
    assert CommonSettings(trace_flush_seconds="0.5").trace_flush_seconds == 0.5  # type: ignore[arg-type]
    for refused in ("-1", "61"):
        with pytest.raises(ValueError, match="trace_flush_seconds"):
            CommonSettings(trace_flush_seconds=refused)  # type: ignore[arg-type]
