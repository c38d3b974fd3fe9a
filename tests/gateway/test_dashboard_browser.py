"""The live dashboard in headless Chromium: renders the snapshot, then follows changes without reload or polling."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from switchboard.status.v1 import status_pb2 as S

from tests.gateway.fake_status import FakeStatusService, operator
from tests.gateway.harness import LiveGateway
from tests.support.browser import log_in

SCREENSHOT_DIR = Path("/tmp")

STATUSES = [S.MEMBER_STATUS_IDLE, S.MEMBER_STATUS_IN_USE, S.MEMBER_STATUS_RINGING, S.MEMBER_STATUS_UNAVAILABLE]


def busier_center(fake: FakeStatusService) -> None:
    """A few more queues and members so the page looks like a real floor (for the screenshot)."""
    now = time.time()
    for q_index, (queue, strategy) in enumerate([("billing", "rrmemory"), ("escalations", "linear")]):
        fake.seed(queues=[S.Queue(name=queue, strategy=strategy, completed=3 + q_index, abandoned=q_index)])
        for n in range(4):
            member = f"Local/{1010 + q_index * 4 + n}@agents"
            status = STATUSES[(n + q_index) % len(STATUSES)]
            fake.seed(
                operators=[
                    operator(
                        queue,
                        member,
                        f"Agent {1010 + q_index * 4 + n}",
                        status=status,
                        status_code=int(status),
                        in_call=status == S.MEMBER_STATUS_IN_USE,
                        calls_taken=n * 2,
                        paused=n == 3,
                        paused_reason="Training" if n == 3 else "",
                    )
                ]
            )
    fake.queues["billing"].waiting = 2
    fake.queues["billing"].callers.extend(
        [
            S.Caller(channel="Local/2101@callers;2", caller_id_num="5552101", position=1, waiting_since=now - 95),
            S.Caller(channel="Local/2102@callers;2", caller_id_num="5552102", caller_id_name="Erin", position=2,
                     waiting_since=now - 20),
        ]
    )  # fmt: skip
    # The seeded call started "125 s before NOW" in the past; make it recent so durations read naturally.
    fake.channels["1700000000.1"].started_at = now - 125
    fake.queues["sales"].callers[0].waiting_since = now - 42


async def _open(browser: Browser, url: str, width: int, height: int) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": width, "height": height})
    api_requests: list[str] = []
    page.on("request", lambda r: api_requests.append(r.url) if "/api/" in r.url else None)
    await log_in(page, url)
    return page, api_requests


@pytest.mark.timeout(90)
async def test_dashboard_renders_the_snapshot_and_follows_changes_live(
    live_gateway: LiveGateway, fake_status: FakeStatusService, browser: Browser
) -> None:
    busier_center(fake_status)
    page, api_requests = await _open(browser, f"{live_gateway.url}/dashboard", 1366, 900)

    sales = page.locator('article.queue[data-queue="sales"]')
    bob = sales.locator('li[data-member-id="PJSIP/1002"]')
    await expect(bob).to_have_attribute("data-status", "ringing")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    alice_support = page.locator('article.queue[data-queue="support"] li[data-member-id="Local/1001@agents"]')
    await expect(alice_support).to_have_attribute("data-status", "paused")
    await expect(alice_support).to_contain_text("Lunch")
    await expect(sales).to_contain_text("Carol")
    await expect(page.locator('article.queue[data-queue="billing"] .callers li')).to_have_count(2)
    call_row = page.locator('#calls tr[data-linked-id="1700000000.0"]')
    await expect(call_row).to_contain_text("Dave")

    # Durations tick in the page itself.
    duration = call_row.locator(".dur")
    first = await duration.text_content()
    await expect(duration).not_to_have_text(first or "", timeout=3000)

    await page.evaluate("window.__notReloaded = true")
    fake_status.push(
        S.StateChange(operator_upserted=operator("sales", "PJSIP/1002", "Bob", paused=True, paused_reason="Coffee")),
        S.StateChange(channel_removed="1700000000.1"),
        S.StateChange(queue_upserted=S.Queue(name="vip", strategy="fewestcalls")),
    )
    await expect(bob).to_have_attribute("data-status", "paused")
    await expect(bob).to_contain_text("Coffee")
    await expect(call_row).to_have_count(0)
    await expect(page.locator('article.queue[data-queue="vip"]')).to_have_count(1)
    assert await page.evaluate("window.__notReloaded === true"), "the page reloaded"
    assert [u for u in api_requests if "/api/queue-status/stream" not in u] == [], "the page polled the API"
    assert len(api_requests) == 1, api_requests

    # Put the call back for a representative picture, then take the screenshots.
    fake_status.push(S.StateChange(channel_upserted=S.Channel(
        channel_name="Local/2001@callers-0001;2", unique_id="1700000000.1", linked_id="1700000000.0",
        caller_id_num="5550001", caller_id_name="Dave", state="Up", bridged_to="Local/1001@agents-0003;1",
        started_at=time.time() - 65,
    )))  # fmt: skip
    await expect(call_row).to_have_count(1)
    await page.screenshot(path=str(SCREENSHOT_DIR / "dashboard.png"), full_page=True)

    wall, _ = await _open(browser, f"{live_gateway.url}/dashboard?wall=1", 1920, 1080)
    await expect(wall.locator('li[data-member-id="PJSIP/1002"]').first).to_have_attribute("data-status", "paused")
    font_size = await wall.evaluate("getComputedStyle(document.body).fontSize")
    assert float(font_size.removesuffix("px")) >= 22
    await wall.screenshot(path=str(SCREENSHOT_DIR / "dashboard-wall.png"))


async def test_dashboard_limited_to_queues(
    live_gateway: LiveGateway, fake_status: FakeStatusService, browser: Browser
) -> None:
    page, api_requests = await _open(browser, f"{live_gateway.url}/dashboard?queue=support", 1024, 700)
    await expect(page.locator('article.queue[data-queue="support"]')).to_have_count(1)
    assert any("queue=support" in u for u in api_requests)
    watch = next(r for r in fake_status.requests if isinstance(r, S.WatchSnapshotRequest))
    assert list(watch.queue_names) == ["support"]
