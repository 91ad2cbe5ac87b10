"""The operations page in headless Chromium: live events arrive over SSE and show up as rows."""
from __future__ import annotations

import shutil

import pytest
from playwright.async_api import async_playwright

from tests.service_proc import ServiceProcess, demo_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture
async def browser():
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        await b.close()


async def test_live_page_shows_events_as_they_happen(tmp_path, browser):
    async with ServiceProcess(tmp_path, demo_config(tmp_path)) as svc:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(svc.base + "/")
        await page.wait_for_selector("#conn.live", timeout=10_000)
        # The first stay opens ~9.5 s into the clip with a 2 s dwell: it must arrive live.
        row = await page.wait_for_selector('#events tr.fresh[data-status="opened"]', timeout=60_000)
        text = await row.inner_text()
        assert "990001001002002" in text and "占道经营" in text and "demo-table" in text
        img = await row.query_selector("img")
        assert img is not None and await img.evaluate("i => i.complete && i.naturalWidth > 0")
        await page.wait_for_selector("#cameras .state-online", timeout=10_000)
        await page.screenshot(path=str(tmp_path / "live.png"))
        assert errors == []
        await svc.stop()
