"""The gateway's notification routes over real HTTP (uvicorn) against the real notify service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from switchboard.notify.v1 import notify_pb2

from devsupport.auth import AUTH_HEADERS
from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.notify.domain.sms_signature import sign
from services.notify.local.http import start
from tests.gateway.conventions import check_against_openapi, check_sse_event, convention_breaks
from tests.gateway.harness import LiveGateway
from tests.gateway.sse import events
from tests.notify.harness import SMS_TOKEN, Notify, Providers, notify_settings, running_notify
from tests.queue_admin.harness import start_admin_server, stop_admin_server

SMS_STATUS = "/api/notifications/sms/status"


@dataclass
class Api:
    http: httpx.AsyncClient
    notify: Notify
    gateway: LiveGateway

    async def send(self, **body: Any) -> list[str]:
        response = await self.http.post("/api/notifications", json=body)
        assert response.status_code == 202, response.text
        ids: list[str] = response.json()["data"]["notificationIds"]
        return ids

    async def settled(self, notification_id: str) -> dict[str, Any]:
        async def finished() -> bool:
            response = await self.http.get(f"/api/notifications/{notification_id}")
            return response.json()["data"]["state"] in ("delivered", "failed")

        await wait_until(finished, within=30, what=f"{notification_id} to finish")
        data: dict[str, Any] = (await self.http.get(f"/api/notifications/{notification_id}")).json()["data"]
        return data


@contextlib.asynccontextmanager
async def open_api(redis_url: str, tmp_path: Path, providers: Providers, **overrides: Any) -> AsyncIterator[Api]:
    """The gateway and the notify service with its workers, settings as the tests' plus ``overrides``."""
    gateway = LiveGateway()  # its URL goes into notify's settings, notify's address into its app
    try:
        settings = notify_settings(
            redis_url, tmp_path, providers, sms_status_callback_url=gateway.url + SMS_STATUS, **overrides
        )
        async with running_notify(settings, providers) as notify:
            try:
                await gateway.start(
                    create_app(
                        GatewaySettings(
                            notify_addr=notify.settings.notify_addr, gateway_status_mirror=False, sse_ping_seconds=1
                        )
                    )
                )
                async with httpx.AsyncClient(base_url=gateway.url, timeout=30, headers=AUTH_HEADERS) as http:
                    yield Api(http, notify, gateway)
            finally:
                await gateway.stop()  # before notify stops, as a deployment stops the gateway first
    finally:
        await gateway.stop()  # again, harmless: its socket is closed even if notify never started


@pytest.fixture
async def api(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[Api]:
    async with open_api(redis_url, tmp_path, providers) as started:
        yield started


async def test_a_sent_email_reports_its_delivery_with_every_attempt(api: Api) -> None:
    (nid,) = await api.send(channel="email", to="ann@example.com", subject="Hello", text="Hi Ann", priority="high")
    status = await api.settled(nid)
    assert status["state"] == "delivered"
    assert status["channel"] == "email"
    assert status["to"] == "ann@example.com"
    assert [(a["attempt"], a["ok"]) for a in status["attempts"]] == [(1, True)]
    assert status["deliveredAt"] >= status["createdAt"]
    # The attempt's instant under the contract's name and under the name published first.
    assert status["attempts"][0]["at"] == status["attempts"][0]["attemptedAt"] == status["deliveredAt"]
    assert set(status) >= {"notificationId", "lastError", "nextAttemptAt"}


async def test_a_notification_reads_sending_while_the_provider_holds_its_answer_then_delivered(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    # The provider's timeout outlasts any wait of this test: the send stays on the wire until released.
    async with open_api(redis_url, tmp_path, providers, notify_provider_timeout_s=120.0) as api:
        providers.bot.hold_answers()
        try:
            (nid,) = await api.send(channel="telegram", to="4242", text="Queue sales: 5 waiting")
            await wait_until(lambda: providers.bot.holding == 1, within=30, what="the send to reach the Bot API")
            on_the_wire = (await api.http.get(f"/api/notifications/{nid}")).json()["data"]
            over_grpc = await api.notify.status(nid)
        finally:
            providers.bot.release_answers()
        assert (on_the_wire["state"], on_the_wire["attempts"], on_the_wire["deliveredAt"]) == ("sending", [], None)
        assert over_grpc.state == notify_pb2.DELIVERY_STATE_SENDING
        assert providers.bot.accepted == []  # nothing judged, nothing accepted, while held
        done = await api.settled(nid)
    assert done["state"] == "delivered"
    assert [(a["attempt"], a["ok"]) for a in done["attempts"]] == [(1, True)]
    assert [m["text"] for m in providers.bot.accepted] == ["Queue sales: 5 waiting"]


async def test_an_email_in_html_or_from_a_template_reaches_the_mail_as_the_gateway_was_given_it(
    api: Api, providers: Providers
) -> None:
    html = "<p><b>5</b> waiting in sales</p>"
    (given,) = await api.send(channel="email", to="ann@example.com", subject="Queue sales", text="5 waiting", html=html)
    welcome = {"name": "Bob", "company": "Acme", "login_url": "https://acme.example/login"}
    (templated,) = await api.send(channel="email", to="bob@example.com", template="welcome", data=welcome)
    assert [(await api.settled(nid))["state"] for nid in (given, templated)] == ["delivered", "delivered"]
    mails = {mail.rcpt_tos[0]: mail.message for mail in await asyncio.to_thread(providers.smtp.wait_for, 2)}
    ann, bob = mails["ann@example.com"], mails["bob@example.com"]
    assert (ann["Subject"], ann.get_body(("plain",)).get_content().strip()) == ("Queue sales", "5 waiting")
    assert html in ann.get_body(("html",)).get_content()
    assert bob["Subject"] == "Welcome to Acme, Bob"
    assert "https://acme.example/login" in bob.get_body(("html",)).get_content()


async def test_an_inbox_is_read_page_by_page_newest_first(api: Api) -> None:
    for n in range(3):  # one after another, so each is newer than the last
        (nid,) = await api.send(channel="database", to="op-7", subject=f"m{n}", text="t")
        await api.settled(nid)
    second = (await api.http.get("/api/users/op-7/inbox?page=2&pageSize=2")).json()
    first = (await api.http.get("/api/users/op-7/inbox?pageSize=2")).json()
    assert [m["subject"] for m in first["data"]["messages"]] == ["m2", "m1"]
    assert [m["subject"] for m in second["data"]["messages"]] == ["m0"]
    assert second["meta"]["page"] == {"page": 2, "pageSize": 2, "total": 3}
    assert second["data"]["unreadCount"] == 3


async def test_several_recipients_get_one_notification_each_and_a_key_answers_the_same_ids(api: Api) -> None:
    body = {"channel": "database", "to": ["op-1", "op-2"], "text": "Shift starts", "idempotencyKey": "shift-9"}
    first = await api.send(**body)
    again = await api.send(**body)
    assert len(first) == 2
    assert first == again
    for nid in first:
        assert (await api.settled(nid))["state"] == "delivered"
    listed = (await api.http.get("/api/notifications")).json()
    assert listed["meta"]["count"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "pigeon", "to": "x", "text": "t"}, "channel"),
        ({"channel": "email", "to": ["a@example.com", "not-an-email"], "text": "t"}, "to"),
        ({"channel": "sms", "to": "+4915112345678", "text": "x" * 1601}, "text"),
        ({"channel": "email", "to": "a@example.com", "template": "welcome", "data": {"name": "A"}}, "data.company"),
        ({"channel": "telegram", "to": "42", "text": "t", "priority": "urgent"}, "priority"),
        ({"channel": "telegram", "to": "42", "text": "t", "delayMs": -1}, "delayMs"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_queues_nothing(api: Api, body: dict[str, Any], field: str) -> None:
    response = await api.http.post("/api/notifications", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["details"]["field"] == field
    assert (await api.http.get("/api/notifications")).json()["meta"]["count"] == 0


async def test_an_unknown_notification_is_404(api: Api) -> None:
    assert (await api.http.get("/api/notifications/nope")).status_code == 404


async def test_the_inbox_streams_new_messages_and_counts_unread(api: Api) -> None:
    async with api.http.stream("GET", "/api/users/op-5/inbox/stream") as response:
        stream = events(response)
        assert (await anext(stream)).event == "ready"

        async def watched() -> bool:
            return "op-5" in api.notify.app.core.hub._watchers

        await wait_until(watched, within=20, what="the watch to subscribe")
        await api.send(channel="database", to="op-5", subject="Alert", text="Queue sales has 5 waiting")
        event = await asyncio.wait_for(anext(stream), 20)
        while event.event != "message":
            event = await asyncio.wait_for(anext(stream), 20)
    message = event.json()
    assert (message["subject"], message["body"], message["read"]) == ("Alert", "Queue sales has 5 waiting", False)
    inbox = (await api.http.get("/api/users/op-5/inbox")).json()["data"]
    assert inbox["unreadCount"] == 1
    assert [m["messageId"] for m in inbox["messages"]] == [message["messageId"]]
    read = await api.http.post("/api/users/op-5/inbox/read", json={"ids": [message["messageId"]]})
    assert read.json()["data"]["updated"] == 1
    assert (await api.http.get("/api/users/op-5/inbox?unreadOnly=true")).json()["data"]["unreadCount"] == 0


async def test_a_push_subscription_is_registered_used_and_removed(api: Api, providers: Providers) -> None:
    key = (await api.http.get("/api/push/vapid-public-key")).json()["data"]["publicKey"]
    assert len(key) == 87  # 65 bytes, base64url without padding
    subscription = await providers.new_push_subscription()
    created = await api.http.post(
        "/api/push/subscriptions",
        json={
            "userId": "u9",
            "endpoint": subscription["endpoint"],
            "keys": subscription["keys"],
            "expirationTime": None,
        },
    )
    assert created.status_code == 201, created.text
    (nid,) = await api.send(channel="browser", to="u9", subject="Hi", text="pushed")
    assert (await api.settled(nid))["state"] == "delivered"
    assert providers.push.received[0]["payload"]["body"] == "pushed"
    subscription_id = created.json()["data"]["subscriptionId"]
    assert (await api.http.delete(f"/api/push/subscriptions/{subscription_id}")).status_code == 200
    assert (await api.http.delete(f"/api/push/subscriptions/{subscription_id}")).status_code == 404


async def test_a_push_subscription_with_bad_keys_is_400_naming_the_key(api: Api) -> None:
    body = {"userId": "u9", "endpoint": "https://push.example/x", "keys": {"p256dh": "short", "auth": "AAAA"}}
    response = await api.http.post("/api/push/subscriptions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "p256dh"


async def test_the_sms_providers_signed_callback_settles_the_notification(api: Api, providers: Providers) -> None:
    providers.sms.undeliverable.add("+4915100000000")
    (ok,) = await api.send(channel="sms", to="+4915112345678", text="code 1")
    (bad,) = await api.send(channel="sms", to="+4915100000000", text="code 2")
    assert (await api.settled(ok))["state"] == "delivered"
    failed = await api.settled(bad)
    assert failed["state"] == "failed"
    assert "undelivered: 30003" in failed["lastError"]
    assert all(c["status"] == 200 for c in providers.sms.callbacks)


async def test_an_sms_callback_with_a_wrong_signature_is_403(api: Api) -> None:
    form = {"MessageSid": "SMx", "MessageStatus": "delivered"}
    url = api.gateway.url + SMS_STATUS
    forged = await api.http.post(SMS_STATUS, data=form, headers={"X-Twilio-Signature": sign("wrong", url, form)})
    assert forged.status_code == 403
    unknown = await api.http.post(SMS_STATUS, data=form, headers={"X-Twilio-Signature": sign(SMS_TOKEN, url, form)})
    assert unknown.status_code == 404


async def test_queue_stats_show_both_notification_queues(api: Api, redis_url: str, tmp_path: Path) -> None:
    admin = await start_admin_server(redis_url, tmp_path / "queue-admin")
    app = create_app(GatewaySettings(queue_admin_addr=admin.address, gateway_status_mirror=False))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway.test", headers=AUTH_HEADERS
            ) as http,
        ):
            (nid,) = await api.send(channel="database", to="op-1", text="hi")
            await api.settled(nid)
            stats = (await http.get("/api/queue/stats")).json()["data"]
    finally:
        await stop_admin_server(admin)
    names = set(stats["queues"])
    assert {"notifications", "notifications_telegram"} <= names


async def test_an_sms_callback_through_a_url_rewriting_proxy_is_checked_against_the_configured_url(
    redis_url: str, tmp_path: Path, providers: Providers
) -> None:
    gateway = LiveGateway()

    async def forward(request: web.Request) -> web.Response:
        # A reverse proxy: public path /hooks/sms -> the gateway's route, headers and body as they came.
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                gateway.url + SMS_STATUS,
                content=await request.read(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        return web.Response(status=answer.status_code, body=answer.content, content_type="application/json")

    proxy_app = web.Application()
    proxy_app.router.add_post("/hooks/sms", forward)
    proxy = await start(proxy_app)
    settings = notify_settings(redis_url, tmp_path, providers, sms_status_callback_url=proxy.url + "/hooks/sms")
    try:
        async with running_notify(settings, providers) as notify:
            try:
                await gateway.start(
                    create_app(GatewaySettings(notify_addr=notify.settings.notify_addr, gateway_status_mirror=False))
                )
                async with httpx.AsyncClient(base_url=gateway.url, timeout=30, headers=AUTH_HEADERS) as http:
                    api = Api(http, None, gateway)  # type: ignore[arg-type]
                    (nid,) = await api.send(channel="sms", to="+4915112345678", text="code 3")
                    assert (await api.settled(nid))["state"] == "delivered"
            finally:
                await gateway.stop()
    finally:
        await proxy.stop()
    assert [c["status"] for c in providers.sms.callbacks] == [200]


async def test_notification_answers_and_inbox_events_validate_against_the_published_schemas(
    api: Api, providers: Providers
) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    checked: list[tuple[str, str, httpx.Response]] = []

    async def call(method: str, template: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await api.http.request(method, url, **kwargs)
        checked.append((method, template, response))
        return response

    async with api.http.stream("GET", "/api/users/op-6/inbox/stream") as response:
        stream = events(response)
        ready = await anext(stream)
        check_sse_event(spec, "/api/users/{user_id}/inbox/stream", ready.event, ready.json())

        async def watched() -> bool:
            return "op-6" in api.notify.app.core.hub._watchers

        await wait_until(watched, within=20, what="the watch to subscribe")
        sent = await call("post", "/api/notifications", "/api/notifications", json={
            "channel": "database", "to": "op-6", "subject": "Alert", "text": "5 waiting"
        })  # fmt: skip
        event = await asyncio.wait_for(anext(stream), 20)
        while event.event != "message":
            event = await asyncio.wait_for(anext(stream), 20)
        check_sse_event(spec, "/api/users/{user_id}/inbox/stream", event.event, event.json())
    (nid,) = sent.json()["data"]["notificationIds"]
    await api.settled(nid)
    await call("get", "/api/notifications/{notification_id}", f"/api/notifications/{nid}")
    await call("get", "/api/notifications", "/api/notifications")
    await call("get", "/api/users/{user_id}/inbox", "/api/users/op-6/inbox")
    await call("post", "/api/users/{user_id}/inbox/read", "/api/users/op-6/inbox/read", json={"all": True})
    await call("get", "/api/push/vapid-public-key", "/api/push/vapid-public-key")
    subscription = await providers.new_push_subscription()
    created = await call("post", "/api/push/subscriptions", "/api/push/subscriptions", json={
        "userId": "u7", "endpoint": subscription["endpoint"], "keys": subscription["keys"]
    })  # fmt: skip
    removal = f"/api/push/subscriptions/{created.json()['data']['subscriptionId']}"
    await call("delete", "/api/push/subscriptions/{subscription_id}", removal)
    await call("delete", "/api/push/subscriptions/{subscription_id}", removal)
    await call("get", "/api/notifications/{notification_id}", "/api/notifications/nope")
    await call("post", "/api/notifications", "/api/notifications", json={"channel": "pigeon", "to": "x", "text": "t"})
    assert [r.status_code for _, _, r in checked] == [202, 200, 200, 200, 200, 200, 201, 200, 404, 404, 400]
    for method, template, answer in checked:
        assert convention_breaks(answer.json()) == [], (method, template)
        check_against_openapi(spec, method, template, answer.status_code, answer.json())
