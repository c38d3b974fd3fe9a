"""/admin/notifications in headless Chromium against the real gateway, notify service, workers
and local providers: send a test message, watch its state, see what the provider received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

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
    async with running_notify(settings, providers):
        live = LiveGateway(
            create_app(
                GatewaySettings(
                    notify_addr=settings.notify_addr, gateway_status_mirror=False, notify_sinks_url=sinks.url
                )
            )
        )
        await live.start()
        try:
            yield live
        finally:
            await live.stop()
            await sinks.stop()


@pytest.mark.timeout(90)
async def test_an_operator_sends_a_test_message_and_sees_it_delivered_and_received(
    browser: Browser, gateway: LiveGateway
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await log_in(page, f"{gateway.url}/admin/notifications")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
    await page.select_option("select[name=channel]", "telegram")
    await page.fill("input[name=to]", "4242")
    await page.fill("textarea[name=text]", "Queue sales: 5 waiting")
    await page.click("#send button[type=submit]")
    await expect(page.locator("#result")).to_contain_text("queued", timeout=20_000)
    row = page.locator("#recent tr").first
    await expect(row).to_contain_text("4242")
    await expect(row.locator(".state")).to_have_text("delivered", timeout=30_000)
    await expect(page.locator('.sink[data-sink="telegram"]')).to_contain_text(
        "4242: Queue sales: 5 waiting", timeout=20_000
    )


@pytest.mark.timeout(90)
async def test_a_bad_recipient_is_refused_on_the_page_naming_the_field(browser: Browser, gateway: LiveGateway) -> None:
    page = await browser.new_page()
    await log_in(page, f"{gateway.url}/admin/notifications")
    await page.select_option("select[name=channel]", "sms")
    await page.fill("input[name=to]", "0151-nope")
    await page.fill("textarea[name=text]", "hi")
    await page.click("#send button[type=submit]")
    await expect(page.locator("#result.error")).to_contain_text("to:", timeout=20_000)
    await expect(page.locator("#recent")).to_contain_text("No notifications yet.")
