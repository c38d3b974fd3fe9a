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


# Every fetch the page makes, and every JSON body it reads, kept where the test can wait for them.
_TRACK_REPLIES = """
(() => {
  window.__fetches = []; window.__jsonReads = [];
  const fetch = window.fetch, json = Response.prototype.json;
  const kept = (list, p) => { list.push(p.catch(() => {})); return p; };
  window.fetch = function (...args) { return kept(window.__fetches, fetch.apply(this, args)); };
  Response.prototype.json = function () { return kept(window.__jsonReads, json.call(this)); };
})();
"""
_REPLIES_HANDLED = """async () => {
  const turn = () => new Promise((done) => setTimeout(done, 0));
  await Promise.all(window.__fetches); await turn();  // each reply's continuation began its JSON read
  await Promise.all(window.__jsonReads); await turn();  // and what followed the read (rendering) ran
}"""


async def track_replies(page: Page) -> None:
    """Keep track of the page's fetches from its next navigation on (see :func:`replies_handled`)."""
    await page.add_init_script(_TRACK_REPLIES)


async def replies_handled(page: Page) -> None:
    """Return once every reply the page has fetched so far has been read and handled by the
    page's script (what it does right after ``await response.json()``): a negative check made
    afterwards is not early."""
    await page.evaluate(_REPLIES_HANDLED)
