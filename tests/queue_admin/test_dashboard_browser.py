"""/admin/queues in headless Chromium against the real gateway, queue admin service and a real
workflow worker: live counts, a failing job showing up without reload, retry, pause/resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from devsupport.auth import AUTH_HEADERS
from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime.queue import QueueAdmin, QueueSpec
from tests.gateway.harness import LiveGateway, served
from tests.queue_admin.harness import AdminServer, StartWorker
from tests.support.browser import log_in, replies_handled, track_replies

HEAVY = "heavy_workflow_execution"
SCREENSHOT = "/tmp/queues.png"
WAIT_MS = 30_000
"""How long a page is given to show what surely comes (a live event, a list read). ListJobs took up
to 300 ms with two busy loops and the suite on 2 cores; Playwright's 5 s default expectation is tuned
for a quiet machine."""


@pytest.fixture
async def gateway(admin_server: AdminServer, declared: QueueSpec) -> AsyncIterator[LiveGateway]:
    async for live in served(create_app(GatewaySettings(queue_admin_addr=admin_server.address, sse_ping_seconds=5.0))):
        yield live


async def enqueue(gateway: LiveGateway, **body: object) -> str:
    async with httpx.AsyncClient(base_url=gateway.url, headers=AUTH_HEADERS) as client:
        response = await client.post("/api/queues/workflow/jobs", json={"name": HEAVY, **body})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["data"]["jobId"]
    return job_id


async def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    await log_in(page, url)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    return page, requests


@pytest.mark.timeout(120)  # 8 s at load 8; its waits are for what surely comes (WAIT_MS each)
async def test_dashboard_follows_jobs_live_and_drives_retry_and_pause(
    gateway: LiveGateway, start_worker: StartWorker, layer: QueueAdmin, browser: Browser
) -> None:
    await start_worker(attempts=1)
    await enqueue(gateway, data={"duration_ms": 1})
    page, requests = await open_page(browser, f"{gateway.url}/admin/queues/workflow?state=failed")
    card = page.locator('.qcard[data-queue="workflow"]')
    await expect(card.locator('[data-count="completed"] b')).to_have_text("1", timeout=WAIT_MS)
    await expect(card).to_contain_text("1 worker", timeout=WAIT_MS)
    await expect(page.locator("#jobs")).to_contain_text("No failed jobs", timeout=WAIT_MS)
    await page.evaluate("window.__notReloaded = true")

    # A job that fails appears on the failed tab and in the counts, without a reload.
    failing = await enqueue(gateway, data={"fail_times": 1, "duration_ms": 40}, jobId="nightly-report")
    row = page.locator(f'#jobs tr[data-job-id="{failing}"]')
    await expect(row).to_have_attribute("data-state", "failed", timeout=WAIT_MS)
    await expect(row).to_contain_text("TransientError", timeout=WAIT_MS)
    await expect(card.locator('[data-count="failed"] b')).to_have_text("1", timeout=WAIT_MS)
    await expect(page.locator('#tabs [data-tab="failed"] .n')).to_have_text("1", timeout=WAIT_MS)

    # Its detail: data, error history with the traceback.
    await row.click(timeout=WAIT_MS)
    detail = page.locator("#detail")
    await expect(detail).to_contain_text('"fail_times": 1', timeout=WAIT_MS)
    await expect(detail.locator(".errors details")).to_have_count(1, timeout=WAIT_MS)
    await expect(detail.locator(".errors pre")).to_contain_text("Traceback (most recent call last)", timeout=WAIT_MS)

    # Retry: the job leaves the failed list and completes (attempt 2 succeeds).
    await row.locator('[data-action="retry"]').click(timeout=WAIT_MS)
    await expect(row).to_have_count(0, timeout=WAIT_MS)
    await expect(card.locator('[data-count="completed"] b')).to_have_text("2", timeout=WAIT_MS)
    await expect(detail.locator(".state")).to_have_text("completed", timeout=WAIT_MS)
    await expect(detail.locator(".result")).to_contain_text('"attempt": 2', timeout=WAIT_MS)

    # Pause toggles the queue (and the button); resume undoes it.
    toggle = page.locator("#pause-toggle")
    await toggle.click(timeout=WAIT_MS)
    await expect(card).to_have_attribute("data-paused", "true", timeout=WAIT_MS)
    await expect(toggle).to_have_text("Resume", timeout=WAIT_MS)
    assert await layer.is_paused()
    waiting = await enqueue(gateway, priority=5)
    await page.locator('#tabs [data-tab="waiting"]').click(timeout=WAIT_MS)
    await expect(page.locator(f'#jobs tr[data-job-id="{waiting}"]')).to_have_count(1, timeout=WAIT_MS)
    await toggle.click(timeout=WAIT_MS)
    await expect(card).to_have_attribute("data-paused", "false", timeout=WAIT_MS)
    assert not await layer.is_paused()
    await expect(page.locator(f'#jobs tr[data-job-id="{waiting}"]')).to_have_count(0, timeout=WAIT_MS)

    await expect(card.locator('[data-count="completed"] b')).to_have_text("3", timeout=WAIT_MS)

    assert await page.evaluate("window.__notReloaded === true"), "the page reloaded"
    # Quiet queue, quiet page: nothing is fetched on a timer. Time passing is what is tested: the
    # page's one debounce (120 ms after a live event, queues.js) and its fetch are over within the
    # first 0.5 s; a refresh timer of up to 1.5 s would then show in the window that follows.
    await asyncio.sleep(0.5)
    before = len(requests)
    await asyncio.sleep(1.5)
    assert requests[before:] == []

    await screenshot_state(page, gateway, layer)
    await page.close()


@pytest.mark.timeout(60)
async def test_a_list_answered_after_a_later_ones_reply_does_not_replace_the_tab_shown(
    gateway: LiveGateway, browser: Browser
) -> None:
    """Under load an earlier ListJobs can answer last: the waiting list asked for before the
    delayed tab was opened then replaced the delayed rows, and with no further event it stayed."""
    waiting = await enqueue(gateway)  # no worker runs: it stays waiting
    delayed = await enqueue(gateway, delayMs=600_000)
    page = await browser.new_page()
    await track_replies(page)
    await log_in(page, f"{gateway.url}/admin/queues/workflow?state=delayed")
    await expect(page.locator(f'#jobs tr[data-job-id="{delayed}"]')).to_have_count(1, timeout=WAIT_MS)

    held, release = asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        held.set()
        await release.wait()
        await route.continue_()

    await page.route(lambda url: "/jobs?state=waiting" in url, hold)
    await page.locator('#tabs [data-tab="waiting"]').click(timeout=WAIT_MS)
    async with asyncio.timeout(WAIT_MS / 1000):
        await held.wait()
    await page.locator('#tabs [data-tab="delayed"]').click(timeout=WAIT_MS)
    await expect(page.locator(f'#jobs tr[data-job-id="{delayed}"]')).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator('#tabs [data-tab="delayed"]')).to_have_attribute("aria-selected", "true")
    release.set()  # the waiting list's reply now comes, after the delayed list's
    await replies_handled(page)
    await expect(page.locator(f'#jobs tr[data-job-id="{delayed}"]')).to_have_count(1)
    await expect(page.locator(f'#jobs tr[data-job-id="{waiting}"]')).to_have_count(0)
    await page.close()


async def screenshot_state(page: Page, gateway: LiveGateway, layer: QueueAdmin) -> None:
    """A representative picture: a paused backlog, a delayed job, failures with their history."""
    await layer.pause()
    for n in range(3):
        await enqueue(gateway, data={"fail_times": 1}, jobId=f"stats-{n}", priority=n)
    await layer.resume()
    failed_count = page.locator('.qcard[data-queue="workflow"] [data-count="failed"] b')
    await expect(failed_count).to_have_text("3", timeout=WAIT_MS)
    await layer.pause()
    for n in range(4):
        await enqueue(gateway, data={"duration_ms": 250 * n}, priority=n * 3)
    await enqueue(gateway, delayMs=600_000)
    await page.locator('#tabs [data-tab="failed"]').click(timeout=WAIT_MS)
    await page.locator('#jobs tr[data-job-id="stats-2"]').click(timeout=WAIT_MS)
    await expect(page.locator("#detail .errors pre")).to_contain_text("TransientError", timeout=WAIT_MS)
    await page.screenshot(path=SCREENSHOT, full_page=True)
