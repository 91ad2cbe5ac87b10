"""End to end: `xueliang run` on a file camera, events into a real Kafka-protocol broker that only
comes up 10 s after the service, keyed by grid code, none lost; the live SSE stream and the API
see the same events."""
from __future__ import annotations

import asyncio
import json
import time

import httpx

from tests.brokers import NoidaKafka, consume_all, free_port
from tests.service_proc import ServiceProcess, demo_config, wait_for

DEMO_GRID = "990001001002002"  # the demo camera's position in the demo district


async def sse_collect(base: str, out: list[dict], connected: asyncio.Event, headers: dict) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=None, headers=headers) as client:
        async with client.stream("GET", "/events/stream") as resp:
            connected.set()
            event = None
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "event":
                    out.append(json.loads(line.split(":", 1)[1]))


async def test_events_reach_late_kafka_keyed_by_grid_none_lost(tmp_path):
    kafka_port = free_port()
    doc = demo_config(tmp_path, kafka={"bootstrap_servers": f"127.0.0.1:{kafka_port}", "topic": "grid.dispatch",
                                       "retry_backoff_s": 0.5, "retry_backoff_max_s": 2})
    broker = NoidaKafka(port=kafka_port)
    sse_events: list[dict] = []
    sse_task = None
    try:
        async with ServiceProcess(tmp_path, doc) as svc, httpx.AsyncClient(base_url=svc.base, timeout=5, headers=svc.headers) as api:
            connected = asyncio.Event()
            sse_task = asyncio.create_task(sse_collect(svc.base, sse_events, connected, svc.headers))
            await asyncio.wait_for(connected.wait(), 10)

            async def n_events():
                return len((await api.get("/events", params={"limit": 1000})).json()["events"])

            # The broker comes up 10 s after the service, and not before it has accepted an event.
            await wait_for(n_events, 60, "a first event while Kafka is down", svc.proc)
            await asyncio.sleep(max(0.0, svc.started_at + 10 - time.monotonic()))
            assert (await api.get("/readyz")).json()["outbox_backlog"] >= 1
            await asyncio.to_thread(broker.start)

            async def cleared():  # a whole incident: opened, maybe updated, cleared
                return (await api.get("/events", params={"status": "cleared"})).json()["events"]

            await wait_for(cleared, 90, "a cleared incident", svc.proc)

            async def drained():
                return (await api.get("/readyz")).json()["outbox_backlog"] == 0

            await wait_for(drained, 60, "the outbox to drain into Kafka", svc.proc)
            stored = (await api.get("/events", params={"limit": 1000})).json()["events"]
            cams = (await api.get("/cameras")).json()
            one = (await api.get(f"/cameras/{cams[0]['id']}")).json()
            assert one["id"] == cams[0]["id"] and one["state"] == "online" and one["fps_analysed"] > 0
            assert one["fps_in"] > 0 and one["last_frame_at"] > time.time() - 10
            snap = await api.get(f"/cameras/{cams[0]['id']}/snapshot")
            assert snap.headers["content-type"] == "image/jpeg" and snap.content[:2] == b"\xff\xd8"
            assert (await api.get("/cameras/no-such-camera")).status_code == 404
            metrics = (await api.get("/metrics")).text
            assert f'xueliang_camera_state{{camera="{one["id"]}",state="online"}} 1.0' in metrics
            assert "xueliang_camera_fps_analysed{" in metrics

            async def sse_has_all():  # it connected before the first event, so it must see each one
                return {e["event_id"] for e in sse_events} >= {e["event_id"] for e in stored}

            await wait_for(sse_has_all, 10, "the SSE stream to deliver every stored event")
            assert await svc.stop() == 0

        records = await consume_all(broker.bootstrap, "grid.dispatch", len(stored), timeout_s=30)
        kafka_events = [json.loads(r.value) for r in records]
        assert {e["event_id"] for e in kafka_events} == {e["event_id"] for e in stored}
        assert {r.key.decode() for r in records} == {DEMO_GRID}
        headers = dict(records[0].headers)
        assert headers["grid"] == DEMO_GRID.encode() and headers["schema_version"] == b"1"
        # Per-key order: the Kafka order of the grid's events is the order they were accepted.
        order = {e["event_id"]: e["seq"] for e in stored}
        firsts = [order[i] for i in dict.fromkeys(e["event_id"] for e in kafka_events)]
        assert firsts == sorted(firsts)
        statuses = [e["status"] for e in sorted(stored, key=lambda e: e["seq"])]
        assert statuses[0] == "opened" and "cleared" in statuses
        assert all(e["grid"]["code"] == DEMO_GRID for e in stored)
        assert cams[0]["state"] == "online" and cams[0]["frames_analysed"] > 20
    finally:
        if sse_task is not None:
            sse_task.cancel()
        broker.stop()
