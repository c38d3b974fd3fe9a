"""A notification's delivery is one trace: gateway -> notify Send -> queued job -> provider call."""

from __future__ import annotations

from pathlib import Path

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


async def test_a_telegram_delivery_is_a_span_in_the_senders_trace(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    exporter = InMemorySpanExporter()
    with global_tracing(exporter):
        settings = notify_settings(redis_url, tmp_path, providers)
        gateway = LiveGateway(
            create_app(GatewaySettings(notify_addr=settings.notify_addr, gateway_status_mirror=False))
        )
        async with running_notify(settings, providers) as notify:
            await gateway.start()
            try:
                async with httpx.AsyncClient(base_url=gateway.url, timeout=30, headers=AUTH_HEADERS) as http:
                    body = {"channel": "telegram", "to": "4242", "text": "queue sales: 3 waiting"}
                    response = await http.post("/api/notifications", json=body)
                    assert response.status_code == 202, response.text
                    (nid,) = response.json()["data"]["notificationIds"]
                    assert (await notify.settled(nid)).state == notify_pb2.DELIVERY_STATE_DELIVERED

                def delivered_span() -> bool:
                    return any(s.name == "notify.deliver telegram" for s in exporter.get_finished_spans())

                await wait_until(delivered_span, within=10, what="the delivery span")
            finally:
                await gateway.stop()
        spans = list(exporter.get_finished_spans())
    (deliver,) = [s for s in spans if s.name == "notify.deliver telegram"]
    (request,) = [s for s in spans if s.name == "POST /api/notifications" and s.kind is SpanKind.SERVER]
    assert deliver.kind is SpanKind.CLIENT
    assert deliver.attributes is not None
    assert deliver.attributes["notify.notification_id"] == nid
    assert deliver.attributes["notify.outcome"] == "delivered"
    assert deliver.context.trace_id == request.context.trace_id
    chain = ancestry(deliver, spans)
    assert chain[:3] == ["notify.deliver telegram", "queue.run deliver_telegram", "queue.enqueue deliver_telegram"]
    assert "/switchboard.notify.v1.NotifyService/Send" in chain
    assert chain[-1] == "POST /api/notifications"
