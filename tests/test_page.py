"""The operations page in headless Chromium: log in, live events arrive over SSE and show up as
rows, the detail panel shows the evidence and the grid map, the camera wall shows the camera."""
from __future__ import annotations

import shutil

import pytest
from playwright.async_api import async_playwright

from tests.service_proc import ServiceProcess, demo_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
DEMO_TOKEN = "xl_demo_only-for-make-demo-never-in-production"  # configs/demo.yaml, documented in README


@pytest.fixture
async def browser():
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        await b.close()


async def login(page, base: str, token: str) -> None:
    await page.goto(base + "/")
    await page.fill("#token", token)
    await page.click("#login button[type=submit]")
    await page.wait_for_selector("#who:has-text('·')", timeout=10_000)


async def test_live_page_shows_events_as_they_happen(tmp_path, browser):
    async with ServiceProcess(tmp_path, demo_config(tmp_path)) as svc:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(svc.base + "/")
        await page.wait_for_selector("#login", timeout=10_000)  # nothing without a token
        await page.fill("#token", "xl_demo_wrong")
        await page.click("#login button[type=submit]")
        await page.wait_for_selector("#login-error:has-text('not valid')", timeout=10_000)
        await login(page, svc.base, DEMO_TOKEN)  # the documented demo token works with the demo config
        await page.wait_for_selector("#conn.live", timeout=10_000)
        # The first stay opens ~9.5 s into the clip with a 2 s dwell: it must arrive live.
        row = await page.wait_for_selector('#events tr.fresh[data-status="opened"]', timeout=60_000)
        text = await row.inner_text()
        assert "990001001002002" in text and "占道经营" in text and "demo-table" in text
        img = await row.query_selector("img")
        await page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img, timeout=10_000)
        await row.click()
        await page.wait_for_selector("#detail-map svg polygon.grid.here", timeout=10_000)
        await page.wait_for_selector("#detail-map svg circle.point")
        assert await page.locator("#detail tbody tr").count() >= 1  # the lifecycle
        await page.goto(svc.base + "/static/cameras.html")
        await page.wait_for_selector(".card[data-camera=demo-table] .state-online", timeout=10_000)
        assert errors == []
        await svc.stop()
