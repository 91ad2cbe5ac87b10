"""Live video on the camera wall and in the event detail, in headless Chromium against
`xueliang run` with `live.enabled`, a real RTSP server that wants a password, and a camera
that is down. The video is each camera's own H.264 through the restreamer child process, read
by the page as fragmented MP4 over the session-authorised API into Media Source Extensions.

The RTSP password must appear nowhere the browser can see: the page's HTML, any request it sent
or text response it received, any WebSocket frame, the API's answers, the video bytes, nor the
service's log.
"""
from __future__ import annotations

import asyncio
import time

import httpx

from tests.helpers import TABLE_CLIP
from tests.rtsp import RtspServer
from tests.service_proc import ServiceProcess, demo_config
from tests.test_console_e2e import SHOTS, doc_screenshot
from tests.test_page import DEMO_TOKEN, browser, login  # noqa: F401  (fixture)
from tests.brokers import free_port

PASSWORD = "Rtsp-S3cret-7741"
USER = "viewer7741"


def live_doc(tmp_path, rtsp: RtspServer) -> dict:
    doc = demo_config(tmp_path)
    demo = doc["cameras"][0]
    demo["analysis_fps"] = 2
    doc["cameras"] += [
        {"id": "street", "name": "清泉街道 street camera", "url": rtsp.url("street"), "analysis_fps": 1,
         "location": demo["location"]},
        {"id": "gone", "name": "a camera that is down", "analysis_fps": 1, "location": demo["location"],
         "url": f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/gone"},
    ]
    doc["live"] = {"enabled": True}
    return doc


async def advancing(page, selector: str, timeout_s: float = 30.0) -> float:
    """Wait until the <video> at `selector` plays: its currentTime moves on by a second. Returns
    the seconds from the call until it first showed a frame (currentTime > 0)."""
    t0, first = time.monotonic(), None
    start_at = None
    # The element may not exist yet: the event detail renders after its own API call returns.
    await page.wait_for_selector(selector, state="attached", timeout=timeout_s * 1000)
    while time.monotonic() - t0 < timeout_s:
        t = await page.eval_on_selector(selector, "v => v.currentTime")
        if t > 0 and first is None:
            first, start_at = time.monotonic() - t0, t
        if start_at is not None and t >= start_at + 1.0:
            return first
        await asyncio.sleep(0.25)
    state = await page.eval_on_selector(selector, "v => [v.currentTime, v.readyState, v.error && v.error.message, "
                                        "v.closest('.livebox').dataset.live]")
    raise AssertionError(f"{selector} did not play within {timeout_s} s: currentTime, readyState, error, status = {state}")


async def test_camera_wall_plays_live_video_without_leaking_the_password(tmp_path, browser):  # noqa: F811
    with RtspServer({"street": TABLE_CLIP}, credentials=(USER, PASSWORD)) as rtsp:
        async with ServiceProcess(tmp_path, live_doc(tmp_path, rtsp)) as svc:
            ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = await ctx.new_page()
            errors: list[str] = []
            seen: list[str] = []  # every text the browser received
            pending: list[asyncio.Task] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            async def keep(response):
                ctype = response.headers.get("content-type", "")
                if "video/" in ctype or "event-stream" in ctype:  # endless bodies: checked below by the API client
                    return
                try:
                    seen.append(response.url + "\n" + str(response.headers) + "\n" + await response.text())
                except Exception as exc:  # a body Chromium dropped (navigation): its headers still count
                    seen.append(response.url + "\n" + str(response.headers) + f"\n(body unavailable: {exc!r})")

            page.on("response", lambda r: pending.append(asyncio.ensure_future(keep(r))))
            page.on("request", lambda r: seen.append(f"{r.method} {r.url}\n{r.headers}\n{r.post_data or ''}"))
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: seen.append(str(f))))
            page.on("console", lambda m: seen.append(m.text))

            await login(page, svc.base, DEMO_TOKEN)
            await page.goto(svc.base + "/static/cameras.html")
            first = await advancing(page, ".card[data-camera=street] video")
            await advancing(page, ".card[data-camera=demo-table] video")
            lags = []  # how far the picture is behind the newest frame received (not asserted: load)
            for _ in range(8):
                lags.append(await page.eval_on_selector(
                    ".card[data-camera=street] video", "v => v.buffered.end(v.buffered.length - 1) - v.currentTime"))
                await asyncio.sleep(0.5)
            # The camera that is down says so on its picture: state, reason, since when.
            notice = page.locator(".card[data-camera=gone] .notice")
            await notice.wait_for(state="visible", timeout=30_000)
            text = await notice.inner_text()
            assert "since" in text and ("offline" in text.lower() or "connecting" in text.lower()), text
            # The last analysed frame's zones (and boxes) over the analysed camera's video.
            await page.wait_for_selector(".card[data-camera=demo-table] svg.overlay polygon.zone", timeout=15_000)
            # Availability: the per-district and per-street rates and each camera's 24-hour chart.
            await page.wait_for_selector("#avail-groups table tbody tr td.rate", timeout=15_000)
            assert await page.locator(".card[data-camera=street] svg.hourly rect").count() == 24
            if SHOTS:
                await page.wait_for_selector(".card[data-camera=demo-table] svg.overlay g.track", timeout=20_000)
                await doc_screenshot(page, "console-cameras.png")
            html = await page.content()

            async with httpx.AsyncClient(base_url=svc.base, headers=svc.headers, timeout=30) as api:
                answers = [(await api.get(p)).text for p in
                           ("/cameras", "/cameras/street", "/cameras/gone", "/availability", "/cameras/street/overlay",
                            "/openapi.json", "/static/live.js", "/static/cameras.html")]
                video = b""
                async with api.stream("GET", "/cameras/street/live.mp4") as r:
                    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
                    async for chunk in r.aiter_bytes():
                        video += chunk
                        if len(video) > 300_000:
                            break
            async with httpx.AsyncClient(base_url=svc.base, timeout=30) as anonymous:
                refused = await anonymous.get("/cameras/street/live.mp4")
                assert refused.status_code == 401  # no video without a login
            await asyncio.gather(*pending, return_exceptions=True)
            await ctx.close()
            await svc.stop()
            log = svc.log()

    assert errors == []
    assert seen, "the browser received nothing?"
    for where, text in [("page", html), ("service log", log), *(("browser traffic", s) for s in seen),
                        *(("API", a) for a in answers)]:
        assert PASSWORD not in text, f"the RTSP password is in the {where}: ...{text[text.find(PASSWORD) - 200:][:400]}"
    assert PASSWORD.encode() not in video and video[4:8] == b"ftyp"
    assert "live.restreamer_started" in log
    print(f"street camera: first frame {first:.1f} s after opening the wall; behind the newest received frame: "
          f"median {sorted(lags)[len(lags) // 2]:.2f} s, max {max(lags):.2f} s")


async def test_event_detail_plays_the_events_camera_live(tmp_path, browser):  # noqa: F811
    doc = demo_config(tmp_path)
    doc["live"] = {"enabled": True}
    async with ServiceProcess(tmp_path, doc) as svc:
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await login(page, svc.base, DEMO_TOKEN)
        row = await page.wait_for_selector('#events tr[data-status="opened"]', timeout=90_000)
        await row.click()
        await advancing(page, "#detail .livebox[data-camera=demo-table] video")
        await page.wait_for_selector("#detail svg.overlay polygon.zone", timeout=15_000)
        if SHOTS:
            await doc_screenshot(page, "console-live-detail.png")
        assert errors == []
        await svc.stop()  # with the video still streaming to the page: the service stops all the same
        await page.close()
