"""The incident detail and review end to end: headless Chromium against `xueliang run` on the looping
table clip, with a real Kafka-protocol broker (noida-db).

The live list shows one row per incident; its detail plays the incident's evidence clip and links
the evidence bundle; an operator marks it a false alarm (shadow) in the page; the `reviewed` event
reaches the dispatch topic; the tuning bench's backtest against reviewed events counts it: a longer
dwell removes the false alarm and loses no real one.
"""
from __future__ import annotations

import io
import json
import zipfile

import httpx

from bridge.http.auth import new_token
from tests.brokers import NoidaKafka, consume_all
from tests.service_proc import ServiceProcess, demo_config, wait_for
from tests.test_console_e2e import SHOTS, doc_screenshot
from tests.test_page import browser, login  # noqa: F401  (fixture)


async def test_detail_plays_the_clip_and_a_false_alarm_review_reaches_kafka_and_the_backtest(tmp_path, browser):  # noqa: F811
    broker = NoidaKafka().start()
    try:
        doc = demo_config(tmp_path, kafka={"bootstrap_servers": broker.bootstrap, "topic": "grid.dispatch",
                                           "retry_backoff_s": 0.5})
        doc["cameras"][0]["analysis_fps"] = 2  # the backtest replays each reviewed clip twice on a shared CPU
        tokens = {}
        for who, role, cams in [("operator", "operator", ["demo-table"]), ("viewer", "viewer", [])]:
            tokens[who], rec = new_token(who, role, cams)
            doc["api"]["auth"].setdefault("tokens", []).append(rec.model_dump(exclude_none=True))
        async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, headers=svc.headers,
                                                                            timeout=10) as api:
            async def with_clip():
                evs = (await api.get("/events", params={"limit": 1000})).json()["events"]
                return [e for e in evs if (e["evidence"].get("clip") or "").endswith(".mp4")]

            clipped = (await wait_for(with_clip, 90, "an event with its clip", svc.proc))[-1]
            incident = clipped["incident_id"]
            ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = await ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await login(page, svc.base, tokens["operator"])
            row = page.locator(f'#events tr[data-incident-id="{incident}"]')
            await row.wait_for(timeout=15_000)
            assert await page.locator(f'#events tr[data-incident-id="{incident}"]').count() == 1  # one row, many events
            await row.click()
            await page.wait_for_selector("#detail .lifecycle tbody tr", timeout=15_000)
            await page.click(f'#detail .lifecycle tr[data-event-id="{clipped["event_id"]}"]')
            video = page.locator("#detail video.clip")
            await video.wait_for(timeout=10_000)
            await page.evaluate("() => document.querySelector('#detail video.clip').play()")
            await page.wait_for_function("() => document.querySelector('#detail video.clip').currentTime > 0.5",
                                         timeout=15_000)
            assert await page.locator("#detail table.sha td.mono").count() >= 1  # each stored item's sha256
            assert "config" in await page.locator("#detail .provenance").inner_text()
            href = await page.locator("#detail a.bundle").get_attribute("href")
            bundle = zipfile.ZipFile(io.BytesIO((await api.get(href)).content))
            manifest = json.loads(bundle.read("manifest.json"))
            assert manifest["files"] and all(f["match"] for f in manifest["files"])
            if SHOTS:
                await doc_screenshot(page, "console-incident-detail.png")

            # review: a false alarm, for a shadow
            await page.select_option("#review-reason", "shadow")
            await page.fill("#review-note", "shadow of the awning")
            await page.click("#review-false")
            await page.wait_for_selector(f'#events tr[data-incident-id="{incident}"][data-review="false_alarm"]',
                                         timeout=15_000)
            await page.wait_for_selector("#review .review.false_alarm", timeout=10_000)
            if SHOTS:
                await doc_screenshot(page, "console-live.png")

            async def on_kafka():
                n = len((await api.get("/events", params={"limit": 1000})).json()["events"])
                records = await consume_all(broker.bootstrap, "grid.dispatch", n, timeout_s=10)
                return [json.loads(r.value) for r in records if json.loads(r.value)["status"] == "reviewed"]

            sent = (await wait_for(on_kafka, 60, "the review on the dispatch topic", svc.proc))[0]
            assert sent["incident_id"] == incident and sent["review"]["decision"] == "false_alarm"
            assert sent["review"]["reason"] == "shadow" and sent["review"]["reviewer"] == "operator"
            audit = (await api.get("/audit")).json()
            assert any(a["action"] == "incident.review" and a["target"] == incident for a in audit)

            # the label at work: a 60 s dwell removes the false alarm on its clip (the running 2 s reports it)
            op = {"Authorization": f"Bearer {tokens['operator']}"}
            bench = (await api.get("/tuning/cameras/demo-table", headers=op)).json()
            changed = bench["config"]
            changed["rules"][0]["min_dwell_s"] = 60

            async def backtest(timeout_s):
                job = (await api.post("/tuning/cameras/demo-table/review-backtests", json={"config": changed},
                                      headers=op)).json()

                async def finished():
                    j = (await api.get(f"/tuning/cameras/demo-table/review-backtests/{job['id']}", headers=op)).json()
                    return j if j["state"] not in ("queued", "running") else None

                return await wait_for(finished, timeout_s, "the review backtest", svc.proc)

            result = await backtest(300)
            assert result["state"] == "done", result
            assert (result["reviewed"], result["false_alarms"], result["removed"], result["lost"]) == (1, 1, 1, 0), result
            assert result["summary"].startswith("of your 1 reviewed events, 1 false alarm: this change removes 1 and loses 0")
            again = await backtest(30)  # both configs were replayed on that clip already: no replay now
            assert again["summary"] == result["summary"]
            viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
            assert (await api.post(f"/incidents/{incident}/review", json={"decision": "confirmed"},
                                   headers=viewer)).status_code == 403
            assert errors == []
            await ctx.close()
    finally:
        broker.stop()
