"""/admin/notifications in headless Chromium against the real gateway, notify service, workers
and local providers: send a test message, watch its state, see what the provider received."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from devsupport.waiting import wait_until
from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.notify.local.__main__ import sinks_app
from services.notify.local.http import start
from tests.gateway.harness import LiveGateway
from tests.notify.harness import Providers, notify_settings, running_notify
from tests.support.browser import log_in


@pytest.fixture
async def gateway(redis_url: str, tmp_path: Path, providers: Providers) -> AsyncIterator[LiveGateway]:
    sinks = await start(sinks_app(providers.smtp, providers.bot, providers.push, providers.sms))
    settings = notify_settings(redis_url, tmp_path, providers)
    async with running_notify(settings, providers) as notify:
        live = LiveGateway(
            create_app(
                GatewaySettings(
                    notify_addr=notify.settings.notify_addr, gateway_status_mirror=False, notify_sinks_url=sinks.url
                )
            )
        )
        try:
            await live.start()
            yield live
        finally:
            await live.stop()
            await sinks.stop()


# channel, to, subject, text, and the line the page's local-provider panel shows for it (in-app
# messages have no provider: the user's inbox is where they arrive). Web Push is sent from the
# page in the subscription test below.
SENDS = [
    ("telegram", "4242", "", "Queue sales: 5 waiting", "4242: Queue sales: 5 waiting"),
    ("email", "ann@example.com", "Queue sales", "5 waiting", "ann@example.com: Queue sales"),
    ("sms", "+4915112345678", "", "Queue sales: 5 waiting", "+4915112345678: Queue sales: 5 waiting"),
    ("database", "op-ann", "Queue sales", "5 waiting", None),
]


@pytest.mark.timeout(150)
async def test_an_operator_sends_a_test_message_on_each_channel_and_sees_it_delivered_and_received(
    gateway: LiveGateway, browser: Browser
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await log_in(page, f"{gateway.url}/admin/notifications")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
    for channel, to, subject, text, received in SENDS:
        await page.select_option("#send select[name=channel]", channel)
        await page.fill("#send input[name=to]", to)
        await page.fill("#send input[name=subject]", subject)
        await page.fill("#send textarea[name=text]", text)
        async with page.expect_response(
            lambda r: r.url.endswith("/api/notifications") and r.request.method == "POST"
        ) as sent:
            await page.click("#send button[type=submit]")
        answer = await sent.value
        assert answer.status == 202, (channel, await answer.text())
        (nid,) = (await answer.json())["data"]["notificationIds"]
        await expect(page.locator("#result")).to_have_text(f"queued {nid}", timeout=20_000)
        row = page.locator(f'#recent tr[data-id="{nid}"]')
        await expect(row).to_contain_text(to, timeout=20_000)
        await expect(row.locator(".state")).to_have_text("delivered", timeout=30_000)
        if received is not None:
            await expect(page.locator(f'.sink[data-sink="{channel}"]')).to_contain_text(received, timeout=20_000)
    inbox = await page.evaluate("fetch('/api/users/op-ann/inbox').then(r => r.json())")
    assert [(m["subject"], m["body"]) for m in inbox["data"]["messages"]] == [("Queue sales", "5 waiting")]


@pytest.mark.timeout(90)
async def test_a_bad_recipient_is_refused_on_the_page_naming_the_field(gateway: LiveGateway, browser: Browser) -> None:
    page = await browser.new_page()
    await log_in(page, f"{gateway.url}/admin/notifications")
    await page.select_option("select[name=channel]", "sms")
    await page.fill("input[name=to]", "0151-nope")
    await page.fill("textarea[name=text]", "hi")
    await page.click("#send button[type=submit]")
    await expect(page.locator("#result.error")).to_contain_text("to:", timeout=20_000)
    await expect(page.locator("#recent")).to_contain_text("No notifications yet.")


# Chromium's own push service (FCM) is out of this machine's reach and headless Chromium refuses
# to subscribe, so the page's PushManager hands out a subscription of the local push service:
# the same PushSubscription JSON a browser gives, with keys the local service decrypts with.
FAKE_PUSH_MANAGER = """
const LOCAL = %s;
PushManager.prototype.getSubscription = async function () { return null; };
PushManager.prototype.subscribe = async function (options) {
  const key = new Uint8Array(options.applicationServerKey);
  window.pushOptions = {userVisibleOnly: options.userVisibleOnly, key: btoa(String.fromCharCode(...key))};
  return {endpoint: LOCAL.endpoint, toJSON: () => ({endpoint: LOCAL.endpoint, expirationTime: null, keys: LOCAL.keys})};
};
"""


@pytest.mark.timeout(120)
async def test_a_browser_subscribes_on_the_page_and_its_service_worker_shows_the_push(
    gateway: LiveGateway, providers: Providers, browser: Browser
) -> None:
    local = await providers.new_push_subscription()
    context = await browser.new_context()
    await context.grant_permissions(["notifications"], origin=gateway.url)
    await context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(local))
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    registrations: dict[str, str] = {}
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.update({r["scopeURL"]: r["registrationId"] for r in event["registrations"]}),
    )
    await cdp.send("ServiceWorker.enable")
    await log_in(page, f"{gateway.url}/admin/notifications")
    await page.fill("#push input[name=userId]", "op-push")
    await page.click("#push button[type=submit]")
    await expect(page.locator("#push-state.ok")).to_contain_text("subscribed as op-push", timeout=30_000)
    options = await page.evaluate("window.pushOptions")
    vapid = await page.evaluate("fetch('/api/push/vapid-public-key').then(r => r.json())")
    assert options["userVisibleOnly"] is True
    assert base64.b64decode(options["key"]) == base64.urlsafe_b64decode(vapid["data"]["publicKey"] + "==")

    await page.select_option("#send select[name=channel]", "browser")
    await page.fill("#send input[name=to]", "op-push")
    await page.fill("#send input[name=subject]", "Queue sales")
    await page.fill("#send textarea[name=text]", "5 waiting")
    await page.click("#send button[type=submit]")
    await wait_until(lambda: providers.push.received, within=30, what="the push at the push service")
    (pushed,) = providers.push.received
    assert pushed["subscription"] == local["id"]
    assert (pushed["payload"]["title"], pushed["payload"]["body"]) == ("Queue sales", "5 waiting")

    # What the push service would hand the browser: the decrypted payload, into the real worker.
    await wait_until(lambda: registrations.get(f"{gateway.url}/static/"), within=10, what="the worker's registration")
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": gateway.url,
            "registrationId": registrations[f"{gateway.url}/static/"],
            "data": json.dumps(pushed["payload"]),
        },
    )
    await expect(page.locator("#push-last")).to_have_text("Queue sales: 5 waiting", timeout=20_000)
    await context.close()
