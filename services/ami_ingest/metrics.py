"""Prometheus metrics of the ingest. Counters the hot path would pay for per event (events
applied, unknown events, malformed frames) are plain ``Counter``s of the ingestor, parser and
normalizer, read at scrape time instead."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

RESYNCS = PromCounter("ami_resyncs_total", "Full resyncs from Asterisk's lists, by outcome", ["outcome"])
RESYNC_SECONDS = Histogram("ami_resync_seconds", "Duration of a full resync")
LEADER = Gauge("ami_ingest_leader", "1 while this replica leads its Asterisk server")
CONNECTED = Gauge("ami_connected", "1 while logged in to Asterisk")


class InputQualityCollector(Collector):
    """Events applied (by type), unknown events and malformed frames, read when Prometheus scrapes."""

    def __init__(
        self,
        unknown: Callable[[], Counter[str]],
        malformed: Callable[[], Counter[str]],
        applied: Callable[[], Counter[type]] | None = None,
    ) -> None:
        self._unknown = unknown
        self._malformed = malformed
        self._applied = applied

    def collect(self) -> Iterator[CounterMetricFamily]:
        if self._applied is not None:
            help_text = "AMI events applied to the state, by event type"
            events = CounterMetricFamily("ami_events", help_text, labels=["event"])
            for event_type, count in self._applied().items():
                events.add_metric([event_type.__name__], count)
            yield events
        unknown = CounterMetricFamily("ami_unknown_events", "AMI events counted and ignored", labels=["event"])
        for name, count in self._unknown().items():
            unknown.add_metric([name], count)
        yield unknown
        malformed = CounterMetricFamily("ami_malformed_frames", "AMI input skipped as malformed", labels=["reason"])
        for reason, count in self._malformed().items():
            malformed.add_metric([reason], count)
        yield malformed


def register_input_quality(
    unknown: Callable[[], Counter[str]],
    malformed: Callable[[], Counter[str]],
    applied: Callable[[], Counter[type]] | None = None,
) -> None:
    REGISTRY.register(InputQualityCollector(unknown, malformed, applied))
