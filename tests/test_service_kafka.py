"""End to end: `xueliang run` on a file camera, events into a real Kafka-protocol broker that only
comes up 10 s after the service, keyed by grid code, none lost; the live SSE stream and the API
see the same events."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import httpx
import yaml

from tests.brokers import NoidaKafka, consume_all
from tests.helpers import DATA_DIR, REPO, free_port

DEMO_GRID = "990001001002002"  # the demo camera's position in the demo district


def service_config(tmp_path, kafka_port: int) -> "os.PathLike":
    doc = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    cam = doc["cameras"][0]
    cam["url"] = str(REPO / "configs" / "media" / "table-stays.mp4")
    cam["rules"][0].update(min_dwell_s=2, grace_s=2, update_interval_s=5)
    doc["grid"]["path"] = str(REPO / "configs" / "grids" / "demo-district.geojson")
    doc["data_dir"] = str(DATA_DIR)
    doc["outbox"] = {"path": str(tmp_path / "outbox.sqlite3")}
    doc["evidence"] = {"dir": str(tmp_path / "evidence")}
    doc["kafka"] = {"bootstrap_servers": f"127.0.0.1:{kafka_port}", "topic": "grid.dispatch",
                    "retry_backoff_s": 0.5, "retry_backoff_max_s": 2}
    doc["log"] = {"format": "json", "level": "info"}
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


async def wait_for(predicate, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.returncode is not None:
            raise AssertionError(f"service exited with {proc.returncode} while waiting for {what}")
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def sse_collect(base: str, out: list[dict], connected: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=None) as client:
        async with client.stream("GET", "/events/stream") as resp:
            connected.set()
            event = None
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "event":
                    out.append(json.loads(line.split(":", 1)[1]))


async def test_events_reach_late_kafka_keyed_by_grid_none_lost(tmp_path):
    kafka_port, api_port = free_port(), free_port()
    cfg = service_config(tmp_path, kafka_port)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xueliang.cli", "run", "-c", str(cfg), "--port", str(api_port),
        cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=open(tmp_path / "service.log", "wb"),
        env={**os.environ, "XUELIANG_DATA_DIR": str(DATA_DIR)},
    )
    base = f"http://127.0.0.1:{api_port}"
    broker = NoidaKafka(port=kafka_port)
    sse_events: list[dict] = []
    sse_task = None
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as api:
            async def healthy():
                try:
                    return (await api.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, 60, "readiness", proc)
            connected = asyncio.Event()
            sse_task = asyncio.create_task(sse_collect(base, sse_events, connected))
            await asyncio.wait_for(connected.wait(), 10)

            async def n_events():
                return len((await api.get("/events", params={"limit": 1000})).json()["events"])

            # The broker comes up 10 s after the service, and not before it has accepted an event.
            await wait_for(n_events, 60, "a first event while Kafka is down", proc)
            await asyncio.sleep(max(0.0, started + 10 - time.monotonic()))
            assert (await api.get("/readyz")).json()["outbox_backlog"] >= 1
            await asyncio.to_thread(broker.start)

            await wait_for(lambda: _at_least(n_events, 3), 90, "three events", proc)

            async def drained():
                return (await api.get("/readyz")).json()["outbox_backlog"] == 0

            await wait_for(drained, 60, "the outbox to drain into Kafka", proc)
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
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0

        records = await consume_all(broker.bootstrap, "grid.dispatch", len(stored), timeout_s=30)
        kafka_events = [json.loads(r.value) for r in records]
        assert {e["event_id"] for e in kafka_events} == {e["event_id"] for e in stored}
        assert len(kafka_events) >= len(stored)  # at-least-once: duplicates allowed, losses not
        assert {r.key.decode() for r in records} == {DEMO_GRID}
        headers = dict(records[0].headers)
        assert headers["grid"] == DEMO_GRID.encode() and headers["schema_version"] == b"1"
        # Per-key order: the Kafka order of the grid's events is the order they were accepted.
        order = {e["event_id"]: i for i, e in enumerate(sorted(stored, key=lambda e: e["seq"]))}
        firsts = list(dict.fromkeys(e["event_id"] for e in kafka_events))
        assert [order[i] for i in firsts] == sorted(order[i] for i in firsts)
        statuses = [e["status"] for e in sorted(stored, key=lambda e: e["seq"])]
        assert statuses[0] == "opened" and "cleared" in statuses
        assert all(e["grid"]["code"] == DEMO_GRID for e in stored)
        assert cams[0]["state"] == "online" and cams[0]["frames_analysed"] > 20
    finally:
        if sse_task is not None:
            sse_task.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        broker.stop()


async def _at_least(fn, n):
    return await fn() >= n
