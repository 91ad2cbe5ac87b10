"""The tuning bench end to end in headless Chromium against `xueliang run` on loopback.

An operator logs in, draws the table zone on a frame of the table clip, sets a 6 s dwell,
backtests it on the recorded clip (six stays -> six incidents on the timeline), saves, and the
live camera then reports from the new zone; a viewer's save is refused. The camera starts with
its only rule on a zone where nobody ever stands, so every live event comes from the saved config.
"""
from __future__ import annotations

import os
from pathlib import Path

import httpx

from bridge.http.auth import new_token
from tests.helpers import REPO, TABLE_CLIP, TABLE_STAYS
from tests.service_proc import ServiceProcess, demo_config
from tests.test_page import browser, login  # noqa: F401  (fixture)

TABLE_ZONE = [(0.45, 0.84), (0.72, 0.84), (0.72, 0.965), (0.45, 0.965)]
SHOTS = os.environ.get("XUELIANG_DOC_SCREENSHOTS")  # set to 1 to refresh docs/console-*.png


async def doc_screenshot(page, name: str) -> None:
    """A screenshot for the docs, quantised to 128 colours so it stays small in git."""
    from PIL import Image

    path = REPO / "docs" / name
    await page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)


def bench_doc(tmp_path: Path) -> tuple[dict, dict[str, str]]:
    doc = demo_config(tmp_path)
    doc["cameras"][0]["analysis_fps"] = 1  # the other camera: it only has to keep running
    doc["cameras"].append({
        "id": "table", "name": "Table camera", "url": str(TABLE_CLIP), "analysis_fps": 2,
        "location": {"lon": 117.015, "lat": 36.665, "crs": "wgs84"},
        "zones": [{"name": "door", "polygon": [[0.0, 0.0], [0.1, 0.0], [0.1, 0.1], [0.0, 0.1]]}],
        # A priority-1 category, so the live view's emphasis shows on this camera's alerts.
        "rules": [{"id": "stay-at-table", "type": "dwell", "category": "public-order.crowd-gathering", "zone": "door",
                   "classes": ["person"], "min_dwell_s": 30, "grace_s": 3, "update_interval_s": 30}],
    })
    tokens = {}
    for who, role, cams in [("operator", "operator", ["table"]), ("viewer", "viewer", [])]:
        tokens[who], rec = new_token(who, role, cams)
        doc["api"]["auth"].setdefault("tokens", []).append(rec.model_dump(exclude_none=True))
    return doc, tokens


async def test_operator_tunes_backtests_saves_and_viewer_is_refused(tmp_path, browser):  # noqa: F811
    doc, tokens = bench_doc(tmp_path)
    async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, headers=svc.headers) as api:
        ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await login(page, svc.base, tokens["operator"])
        await page.goto(svc.base + "/static/tune.html?camera=table")
        await page.wait_for_function("() => document.getElementById('frame').naturalWidth > 0", timeout=15_000)
        others_before = {c["id"]: c for c in (await api.get("/cameras")).json()}["demo-table"]
        # The live snapshot can be drawn on too (what the camera sees now), then back to the clip.
        await page.click("#live-frame")
        await page.wait_for_function("() => document.getElementById('frame').src.includes('/snapshot') && "
                                     "document.getElementById('frame').complete && "
                                     "document.getElementById('frame').naturalWidth > 0", timeout=15_000)
        await page.dispatch_event("#t", "change")
        await page.wait_for_function("() => document.getElementById('frame').src.includes('/frame?') && "
                                     "document.getElementById('frame').naturalWidth > 0", timeout=15_000)

        # Draw the table zone by clicking its corners on the frame.
        await page.fill("#new-zone-name", "table")
        await page.click("#draw-zone")
        box = await page.locator("#overlay").bounding_box()
        for x, y in TABLE_ZONE:
            await page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
        await page.click("#finish-zone")
        await page.select_option('[data-field="rules.0.zone"]', "table")
        await page.fill('[data-field="rules.0.min_dwell_s"]', "-1")
        await page.click("#check")  # a bad value is refused at the field, by the server's config models
        err = page.locator('[data-field-box="rules.0.min_dwell_s"] .field-error')
        await err.filter(has_text="greater than 0").wait_for(timeout=10_000)
        await page.fill('[data-field="rules.0.min_dwell_s"]', "6")

        # Backtest on the recorded clip: six stays, six incidents on the timeline with thumbnails.
        await page.click("#backtest")
        await page.wait_for_selector('#timeline[data-state="done"]', timeout=240_000)
        incidents = page.locator("#timeline .incident")
        assert await incidents.count() == len(TABLE_STAYS), await page.inner_text("#bt-status")
        assert await page.locator("#thumbs img").count() == len(TABLE_STAYS)
        await page.wait_for_function(
            "() => [...document.querySelectorAll('#thumbs img')].every(i => i.complete && i.naturalWidth > 0)")
        if SHOTS:
            await doc_screenshot(page, "console-tuning.png")

        # Save: version 1 by the operator; the camera now runs the table zone, the other camera untouched.
        await page.fill("#comment", "table zone, 6 s")
        await page.click("#save")
        await page.wait_for_selector("#save-status:has-text('version 1 by operator')", timeout=20_000)
        versions = (await api.get("/tuning/cameras/table/versions")).json()
        assert [v["version"] for v in versions] == [1, 0] and versions[0]["author"] == "operator"
        assert versions[0]["config"]["zones"][-1]["name"] == "table"
        assert versions[0]["config"]["rules"][0]["min_dwell_s"] == 6

        await page.goto(svc.base + "/")
        row = page.locator('#events tr[data-camera="table"][data-status="opened"]').first
        await row.wait_for(timeout=90_000)
        assert "p1" in (await row.get_attribute("class")).split() and "P1" in await row.inner_text()
        others_after = {c["id"]: c for c in (await api.get("/cameras")).json()}["demo-table"]
        # A restarted camera starts a new worker whose counters begin at 0: these only ever grew.
        assert others_after["frames_decoded"] > others_before["frames_decoded"]
        assert others_after["frames_analysed"] > others_before["frames_analysed"]
        if SHOTS:
            await row.click()
            await page.wait_for_selector("#detail-map svg circle.point", timeout=10_000)
            await doc_screenshot(page, "console-live.png")
        audit = (await api.get("/audit")).json()
        assert any(a["action"] == "camera.save" and a["actor"] == "operator" and a["target"] == "table" for a in audit)
        assert errors == []

        # A viewer: the bench shows the refusal, and a save sent anyway is refused (403).
        vctx = await browser.new_context()
        vpage = await vctx.new_page()
        await login(vpage, svc.base, tokens["viewer"])
        await vpage.goto(svc.base + "/static/tune.html?camera=table")
        await vpage.wait_for_selector("#error:has-text('may not tune')", timeout=10_000)
        status = await vpage.evaluate("""async () => (await fetch('/tuning/cameras/table/config', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({config: {zones: [], rules: []}})})).status""")
        assert status == 403
        assert [v["version"] for v in (await api.get("/tuning/cameras/table/versions")).json()] == [1, 0]
        await svc.stop()
