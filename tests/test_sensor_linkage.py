"""A sensor incident carries a snapshot from a linked camera, taken when it opens."""
from __future__ import annotations

import hashlib
import json
import time

import httpx
from playwright.async_api import async_playwright

from tests.mosquitto import USERS
from tests.service_proc import ServiceProcess, demo_config, wait_for
from tests.test_mqtt_sensors import publish_all, publisher
from tests.test_page import ARGS, CHROMIUM, login


async def test_smoke_alarm_event_carries_a_frame_of_the_linked_camera(tmp_path, mosquitto):
    doc = demo_config(tmp_path)
    doc["cameras"][0]["rules"] = []  # the camera is only a witness here
    doc["mqtt"] = {"port": mosquitto.port, "username": "ingest", "password": USERS["ingest"], "client_id": "linkage"}
    doc["sensors"] = {
        "topics": [{"pattern": "acme/smoke/{sensor_id}/up", "profile": "smoke"}],
        "devices": [{"id": "smoke-9", "kind": "smoke", "location": {"lon": 117.0052, "lat": 36.6552, "crs": "wgs84"},
                     "cameras": ["demo-table"],
                     "rules": [{"id": "smoke", "type": "alarm", "value": "smoke", "category": "safety.fire-smoke"}]}],
    }
    async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, timeout=5, headers=svc.headers) as api:
        async def camera_online():
            return (await api.get("/cameras")).json()[0]["frames_analysed"] > 0

        await wait_for(camera_online, 30, "a frame from the linked camera", svc.proc)
        pub = publisher(mosquitto)
        publish_all(pub, [("acme/smoke/smoke-9/up", json.dumps({"alarm": True, "battery": 90, "ts": int(time.time())}).encode())])
        pub.loop_stop()

        async def opened():
            return (await api.get("/events", params={"category": "safety.fire-smoke", "status": "opened"})).json()["events"]

        [ev] = await wait_for(opened, 30, "the smoke incident", svc.proc)
        assert ev["source"] == {**ev["source"], "kind": "iot", "sensor_id": "smoke-9"}
        snap = await api.get(ev["evidence"]["snapshot"])
        assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
        assert hashlib.sha256(snap.content).hexdigest() == ev["evidence"]["sha256"]["snapshot"]
        # The console's sensor list shows the sensor in alarm, with its last values.
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = await browser.new_page()
            await login(page, svc.base, svc.token)
            await page.goto(svc.base + "/static/sensors.html")
            row = await page.wait_for_selector("tr[data-sensor=smoke-9]", timeout=10_000)
            text = await row.inner_text()
            assert "alarm: smoke" in text and "smoke true" in text and "battery 90" in text
            await browser.close()
        await svc.stop()
