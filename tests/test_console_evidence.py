"""The whole evidence of a dumping incident in the detail, in headless Chromium against the real app
(uvicorn on loopback, a real outbox and evidence store): before and after side by side, the crop,
the clip playing, sha256s, provenance, the bundle; a viewer sees no plate. Frames and the clip are
the bundled table clip's."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import av
import cv2
import uvicorn

from bridge.events.model import (CategoryRef, DetectorRef, Event, Evidence, GridRef, Location, PlateRef, SourceRef)
from tests.brokers import free_port
from tests.console_app import BUNDLED_CLIP, make_console_app
from tests.test_console_e2e import SHOTS, doc_screenshot
from tests.test_page import browser, login  # noqa: F401  (fixture)


def frames(path, at_s: list[float]) -> list[bytes]:
    out, want = [], list(at_s)
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if want and f.time >= want[0]:
                want.pop(0)
                out.append(cv2.imencode(".jpg", f.to_ndarray(format="bgr24"))[1].tobytes())
            if not want:
                break
    return out


async def test_dumping_detail_shows_before_and_after_side_by_side_and_plays_the_clip(tmp_path, browser):  # noqa: F811
    ca = make_console_app(tmp_path)
    ev_store = ca.app.state.api.evidence
    before, after, crop = frames(BUNDLED_CLIP, [2.0, 12.0, 12.5])
    items = {"before": ev_store.put(before, "jpg"), "snapshot": ev_store.put(after, "jpg"),
             "crop": ev_store.put(crop, "jpg"), "clip": ev_store.put(BUNDLED_CLIP.read_bytes(), "mp4"),
             "plate": ev_store.put(crop, "jpg")}
    ev = Event(event_id="e-dump", incident_id="i-dump", status="opened",
               category=CategoryRef(code="environment.illegal-dumping", name="固体废弃物倾倒"),
               occurred_at=datetime.now(timezone.utc), source=SourceRef(kind="video", camera_id="table", zone="kerb"),
               location=Location(lon=117.005, lat=36.655, crs="wgs84"),
               grid=GridRef(code="990001001002002", name="泉南社区第2网格", street="清泉街道"), confidence=0.8,
               evidence=Evidence(**{k: v.url for k, v in items.items()}, sha256={k: v.sha256 for k, v in items.items()}),
               detector=DetectorRef(model="yolov8n", model_sha256="ab" * 32, rule="dumped", config_hash="cfg123"),
               plate=PlateRef(text="京A12345", colour="blue", confidence=0.9, engine="test"))
    await ca.store.append(ev)
    server = uvicorn.Server(uvicorn.Config(ca.app, host="127.0.0.1", port=free_port(), log_config=None,
                                           access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{server.config.port}"
        for who in ("operator", "viewer"):
            ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = await ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await login(page, base, ca.tokens[who])
            await page.click('#events tr[data-incident-id="i-dump"]')
            for fig in ("before", "after", "crop"):
                await page.wait_for_function(
                    f"() => {{ const i = document.querySelector('#detail figure.{fig} img'); return i && i.complete && i.naturalWidth > 0; }}",
                    timeout=15_000)
            b = await page.locator("#detail figure.before").bounding_box()
            a = await page.locator("#detail figure.after").bounding_box()
            assert abs(b["y"] - a["y"]) < 2 and a["x"] > b["x"] + b["width"] - 1  # side by side, before first
            await page.evaluate("() => document.querySelector('#detail video.clip').play()")
            await page.wait_for_function("() => document.querySelector('#detail video.clip').currentTime > 0.5",
                                         timeout=15_000)
            shas = await page.locator("#detail table.sha").inner_text()
            prov = await page.locator("#detail .provenance").inner_text()
            assert items["before"].sha256 in shas and "cfg123" in prov and "yolov8n" in prov
            html = await page.content()
            if who == "viewer":  # no plate text, no plate crop, no review form
                assert "京A12345" not in html and items["plate"].url not in html
                assert await page.locator("#review-form").count() == 0
            else:
                assert items["plate"].sha256 in shas
                await page.locator("#detail .evidence").scroll_into_view_if_needed()
                if SHOTS:
                    await doc_screenshot(page, "console-evidence-dumping.png")
            assert errors == []
            await ctx.close()
    finally:
        server.should_exit = True
        await task
        ca.close()
