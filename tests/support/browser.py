"""Debian's Chromium, headless, driven by Playwright (never a browser download of its own)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, Page, async_playwright

from devsupport.auth import BOOTSTRAP_TOKEN

CHROMIUM = "/usr/bin/chromium"
# No background networking: this machine's closed network would refuse those connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing: apt-get install -y chromium (make setup)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(page: Page, url: str, token: str = BOOTSTRAP_TOKEN) -> None:
    """Open ``url`` the way a person does: the gateway answers with its login form, the token is
    typed in, and the browser lands back on ``url`` with a session cookie."""
    await page.goto(url)
    await page.fill("#token", token)
    async with page.expect_navigation():
        await page.click("#login-form button[type=submit]")
