"""Camera faults as incidents: offline too long, and video-quality checks, each its own incident."""
from __future__ import annotations

import asyncio

import httpx
import numpy as np

from detectors.quality import QualityConfig
from tests.helpers import FIXTURES
from ingest.video import iter_frames
from tests.service_proc import ServiceProcess, demo_config, wait_for
from detectors.camera_faults import OFFLINE_RULE, CameraHealth, HealthConfig


def test_offline_opens_after_the_configured_time_and_clears_when_back():
    h = CameraHealth("c", HealthConfig(offline_after_s=60), QualityConfig(enabled=False))
    assert h.on_status(None, 0) == []
    assert h.on_status(100.0, 159.0) == []
    [opened] = h.on_status(100.0, 160.0)
    assert (opened.status, opened.rule_id) == ("opened", OFFLINE_RULE)
    assert h.on_status(100.0, 200.0) == []
    [cleared] = h.on_status(None, 201.0)
    assert cleared.status == "cleared" and cleared.incident_id == opened.incident_id


def test_each_quality_check_is_its_own_incident():
    h = CameraHealth("c", HealthConfig(), QualityConfig(for_s=3))
    frames = [f.image for f in iter_frames("c", str(FIXTURES / "one-by-one-person-detection.mp4"), 2.0)][:60]
    changes = []
    for i, img in enumerate(frames[:10]):  # real footage first: the monitor learns its reference
        changes += h.on_frame(img, i * 0.5)
    assert changes == []
    for i, img in enumerate(frames[10:30], start=10):  # then the signal is lost
        changes += h.on_frame(np.zeros_like(img), i * 0.5)
    assert [(c.status, c.rule_id) for c in changes] == [("opened", "quality:no_signal")]
    for i, img in enumerate(frames[30:60], start=30):  # and comes back
        changes += h.on_frame(img, i * 0.5)
    assert [(c.status, c.rule_id) for c in changes] == [("opened", "quality:no_signal"), ("cleared", "quality:no_signal")]


async def test_dead_rtsp_camera_becomes_a_camera_fault_incident(tmp_path, rtsp_server):
    doc = demo_config(tmp_path)
    cam = doc["cameras"][0]
    cam["url"] = rtsp_server.url("cam").replace("rtsp://", "rtsp://operator:s3cret-pw@")
    cam["rules"] = []
    cam["zones"] = []
    doc["health"] = {"offline_after_s": 3}
    doc["video"] = {"stall_after_s": 2, "reconnect": {"initial_s": 0.5, "max_s": 1}}
    async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, timeout=5, headers=svc.headers) as api:
        async def online():
            return (await api.get("/cameras")).json()[0]["state"] == "online"

        await wait_for(online, 30, "the RTSP camera online", svc.proc)
        rtsp_server.kill()

        async def fault(status):
            events = (await api.get("/events", params={"category": "maintenance.camera-fault"})).json()["events"]
            return [e for e in events if e["status"] == status]

        [opened] = await wait_for(lambda: fault("opened"), 30, "a camera-fault incident", svc.proc)
        assert opened["detector"]["rule"] == OFFLINE_RULE and opened["source"]["camera_id"] == "demo-table"
        assert opened["routing"]["unit"] and opened["grid"]["code"] == "990001001002002"
        await asyncio.to_thread(rtsp_server.restart)
        [cleared] = await wait_for(lambda: fault("cleared"), 30, "the fault to clear", svc.proc)
        assert cleared["incident_id"] == opened["incident_id"]
        body = (await api.get("/cameras")).text + (await api.get("/events")).text
        await svc.stop()
    # The camera's password never leaves the config: not in the API, the events or the log.
    assert "s3cret-pw" not in body and "s3cret-pw" not in svc.log()
