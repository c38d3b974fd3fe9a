"""A notification's delivery is one trace: gateway -> notify Send -> queued job -> provider call,
on every channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from switchboard.notify.v1 import notify_pb2

from devsupport.auth import AUTH_HEADERS
from devsupport.tracing import ancestry, global_tracing
from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.harness import LiveGateway
from tests.notify.harness import Providers, notify_settings, running_notify

BODIES: dict[str, dict[str, Any]] = {
    "telegram": {"to": "4242", "text": "queue sales: 3 waiting"},
    "email": {"to": "ann@example.com", "subject": "s", "text": "t"},
    "browser": {"to": "u-trace", "subject": "s", "text": "t"},
    "database": {"to": "u-trace", "text": "t"},
    "sms": {"to": "+4915112345678", "text": "t"},
}


async def test_every_channels_delivery_is_a_span_in_the_senders_trace(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    exporter = InMemorySpanExporter()
    sent: dict[str, str] = {}
    with global_tracing(exporter):
        settings = notify_settings(redis_url, tmp_path, providers)
        async with running_notify(settings, providers) as notify:
            gateway = LiveGateway()
            try:
                await gateway.start(
                    create_app(GatewaySettings(notify_addr=notify.settings.notify_addr, gateway_status_mirror=False))
                )
                async with httpx.AsyncClient(base_url=gateway.url, timeout=30, headers=AUTH_HEADERS) as http:
                    subscription = await providers.new_push_subscription()
                    registration = {
                        "userId": "u-trace",
                        "endpoint": subscription["endpoint"],
                        "keys": subscription["keys"],
                    }
                    assert (await http.post("/api/push/subscriptions", json=registration)).status_code == 201
                    for channel, body in BODIES.items():
                        response = await http.post("/api/notifications", json={"channel": channel, **body})
                        assert response.status_code == 202, response.text
                        (sent[channel],) = response.json()["data"]["notificationIds"]
                    for nid in sent.values():
                        assert (await notify.settled(nid)).state == notify_pb2.DELIVERY_STATE_DELIVERED

                def delivered_spans() -> bool:
                    names = {s.name for s in exporter.get_finished_spans()}
                    return all(f"notify.deliver {channel}" in names for channel in sent)

                await wait_until(delivered_spans, within=10, what="the delivery spans")
            finally:
                await gateway.stop()
        spans = list(exporter.get_finished_spans())
    requests = [s for s in spans if s.name == "POST /api/notifications" and s.kind is SpanKind.SERVER]
    for channel, nid in sent.items():
        (deliver,) = [s for s in spans if s.name == f"notify.deliver {channel}"]
        assert deliver.kind is SpanKind.CLIENT
        assert deliver.attributes is not None
        assert deliver.attributes["notify.notification_id"] == nid
        assert deliver.attributes["notify.outcome"] == "delivered"
        job = "deliver_telegram" if channel == "telegram" else "deliver"
        chain = ancestry(deliver, spans)
        assert chain[:3] == [f"notify.deliver {channel}", f"queue.run {job}", f"queue.enqueue {job}"], channel
        assert "/switchboard.notify.v1.NotifyService/Send" in chain
        assert chain[-1] == "POST /api/notifications"
        assert [r for r in requests if r.context.trace_id == deliver.context.trace_id], channel
