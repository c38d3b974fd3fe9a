"""/admin/media in headless Chromium against the real gateway, media service and worker: an
upload (picked, or dropped on the upload zone) appears, turns ready without a reload (its thumbnail
loads), is watermarked from its card, and delete marks it deleted."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, expect

from runtime.queue import Worker
from tests.media.images import encoded, gradient, shared, webp_chunks
from tests.support.browser import log_in

SCREENSHOT = "/tmp/media.png"


async def live_page(browser: Browser, gateway: str) -> Page:
    """/admin/media logged in, its event stream live."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await log_in(page, f"{gateway}/admin/media")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
    return page


@pytest.mark.timeout(90)
async def test_upload_goes_live_to_ready_and_delete_marks_it(
    live_media_gateway: str, media_worker: Worker, tmp_path: Path, browser: Browser
) -> None:
    photo = tmp_path / "rocket.jpg"
    photo.write_bytes(shared("sk_rocket.jpg"))
    page = await live_page(browser, live_media_gateway)
    await expect(page.locator("#media")).to_contain_text("No media yet")

    await page.locator("#owner").fill("browser-test")
    await page.locator("#file").set_input_files(str(photo))
    card = page.locator(".mcard").first
    await expect(card).to_have_attribute("data-state", "ready", timeout=45_000)
    await expect(card.locator("img.thumb")).to_have_js_property("naturalWidth", 150)
    await expect(card.locator("[data-variant]")).to_have_count(3)
    await expect(card).to_contain_text("browser-test")
    await page.screenshot(path=SCREENSHOT)

    await card.locator("button.delete").click()
    await expect(card).to_have_attribute("data-state", "deleted", timeout=20_000)


@pytest.mark.timeout(120)
async def test_a_ready_media_is_watermarked_from_its_card_and_a_refusal_is_shown(
    live_media_gateway: str, media_worker: Worker, watermark_worker: Worker, tmp_path: Path, browser: Browser
) -> None:
    photo = tmp_path / "rocket.jpg"
    photo.write_bytes(shared("sk_rocket.jpg"))
    page = await live_page(browser, live_media_gateway)
    await page.locator("#file").set_input_files(str(photo))
    card = page.locator(".mcard").first
    await expect(card).to_have_attribute("data-state", "ready", timeout=45_000)

    await card.locator("button.watermark").click()  # no text: refused, naming the field
    await expect(page.locator("#upload-status")).to_contain_text("watermarkId")
    await card.locator("input.wm-text").fill("© ACME")
    await card.locator("select.wm-position").select_option("tile")
    await card.locator("button.watermark").click()
    await expect(card.locator('[data-variant="thumb.watermarked"]')).to_have_count(1, timeout=45_000)
    await expect(card.locator("[data-variant]")).to_have_count(6)


@pytest.mark.timeout(60)
async def test_a_file_that_is_no_image_shows_the_refusal(
    live_media_gateway: str, tmp_path: Path, browser: Browser
) -> None:
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"<html>not an image</html>")
    page = await live_page(browser, live_media_gateway)
    await page.locator("#file").set_input_files(str(fake))
    await expect(page.locator("#upload-status")).to_contain_text("not a JPEG, PNG, WebP or GIF")
    await expect(page.locator("#upload-status")).to_have_class("status error")


@pytest.mark.timeout(90)
async def test_a_file_dropped_on_the_upload_zone_is_uploaded_and_goes_ready(
    live_media_gateway: str, media_worker: Worker, browser: Browser
) -> None:
    page = await live_page(browser, live_media_gateway)
    await page.locator("#owner").fill("dropped")
    # What the browser hands the page when a file is dragged in from the desktop: a DataTransfer.
    dropped = await page.evaluate_handle(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "rocket.jpg", { type: "image/jpeg" }));
            return transfer;
        }""",
        base64.b64encode(shared("sk_rocket.jpg")).decode(),
    )
    zone = page.locator("#upload")
    await zone.dispatch_event("dragover", {"dataTransfer": dropped})
    await expect(zone).to_have_class("drop over")  # the zone shows it would take the file
    await zone.dispatch_event("drop", {"dataTransfer": dropped})
    card = page.locator(".mcard").first
    await expect(card).to_have_attribute("data-state", "ready", timeout=45_000)
    await expect(card).to_contain_text("dropped")
    await expect(card.locator("[data-variant]")).to_have_count(3)


@pytest.mark.timeout(90)
async def test_keep_metadata_ticked_keeps_the_exif_and_unticked_strips_it(
    live_media_gateway: str, media_worker: Worker, tmp_path: Path, browser: Browser
) -> None:
    exif = Image.Exif()
    exif[0x010F] = "ACME Cameras"  # Make
    photo = tmp_path / "camera.jpg"
    photo.write_bytes(encoded(gradient((320, 200)), "JPEG", exif=exif.tobytes()))
    page = await live_page(browser, live_media_gateway)
    found = []
    for owner, keep in (("keeps", True), ("strips", False)):
        await page.locator("#owner").fill(owner)
        await page.locator("#keep-metadata").set_checked(keep)
        await page.locator("#file").set_input_files(str(photo))
        card = page.locator(".mcard", has_text=owner)
        await expect(card).to_have_attribute("data-state", "ready", timeout=45_000)
        href = await card.locator('[data-variant="large"]').get_attribute("href")
        served = await page.request.get(f"{live_media_gateway}{href}")
        found.append(b"EXIF" in webp_chunks(await served.body()))
    assert found == [True, False]
