"""Cluster mode answers the platform: three `xueliang run` workers on a real Tansu broker, three
file cameras at one spot (one camera per worker), so each stay at the table is one merged
incident listing cameras run by different workers.

- A verify request about it gets exactly one answer on the dispatch topic, from the worker that
  runs the camera it names (before: every worker refused it as `not_here`).
- After the work order is closed, the next stay opens an incident on every camera and every
  worker holds its own back: nothing new reaches the platform (before: only the worker whose
  outbox held the incident's first source knew the order was closed).
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.cluster_harness import camera, cluster_section, ownership, parse, records, worker
from tests.helpers import xueliang
from tests.service_proc import demo_config, stop_all, wait_for

CLUSTER = {"exactly_once": False, "control_partitions": 3, "incidents_partitions": 2}
FEEDBACK = "grid.feedback"


def publish_cameras(tmp_path, bootstrap: str) -> None:
    doc = demo_config(tmp_path, kafka={"bootstrap_servers": bootstrap, "idempotent": False})
    cams = [camera(i) for i in range(3)]
    for c in cams:  # one spot: their incidents merge
        c["location"] = {"lon": 117.005, "lat": 36.655, "crs": "wgs84"}
    doc["cameras"] = cams
    doc["cluster"] = cluster_section(**CLUSTER)
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    out = xueliang("cameras", "publish", "-c", str(path), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]


def feedback_worker(tmp_path, bootstrap: str, name: str):
    svc = worker(tmp_path, bootstrap, name, **CLUSTER)
    doc = yaml.safe_load(svc.config.read_text())
    doc["kafka"]["feedback_topic"] = FEEDBACK
    doc["feedback"] = {"verify_timeout_s": 20}
    svc.config.write_text(yaml.safe_dump(doc, allow_unicode=True))
    svc.ready_timeout_s = 240.0  # three processes load the model at once on a shared machine
    return svc


def ts(ev: dict) -> float:
    return datetime.fromisoformat(ev["occurred_at"]).timestamp()


@pytest.mark.asyncio
async def test_three_workers_answer_verify_requests_once_and_hold_back_closed_orders(tansu, tmp_path):
    bootstrap = tansu.bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(FEEDBACK, 1, 1)])
    await admin.close()
    publish_cameras(tmp_path, bootstrap)
    workers = {n: feedback_worker(tmp_path, bootstrap, n) for n in ("w1", "w2", "w3")}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()

    async def send(msg: dict) -> None:
        await producer.send_and_wait(FEEDBACK, json.dumps(msg).encode())

    try:
        await asyncio.gather(*(w.__aenter__() for w in workers.values()))

        async def one_camera_each():
            own = await ownership(workers)
            return own if len(own) == 3 and sorted(w for ws in own.values() for w in ws) == ["w1", "w2", "w3"] else None
        own = await wait_for(one_camera_each, 90, "each worker running one of the three cameras")
        owner = {cam: ws[0] for cam, ws in own.items()}

        # A merged incident open now, with sources on at least two workers.
        async def merged_open():
            latest = {}
            for e in parse(await records(bootstrap, "xueliang.events")):
                if e["status"] != "verified":
                    latest[e["incident_id"]] = e
            return next((e for e in latest.values() if e["status"] != "cleared"
                         and len({owner[s["camera_id"]] for s in e["sources"] if s["active"]}) >= 2), None)
        incident = await wait_for(merged_open, 120, "a merged incident seen by cameras on two workers")
        iid = incident["incident_id"]

        await send({"type": "verify_request", "incident_id": iid, "request_id": "req-1"})

        async def answers():
            return [e for e in parse(await records(bootstrap, "xueliang.events"))
                    if e["status"] == "verified" and e["verification"]["request_id"] == "req-1"]
        [answer] = await wait_for(answers, 60, "the answer to the verify request")
        await asyncio.sleep(5)  # a second answer would be on its way by now
        assert len({e["event_id"] for e in await answers()}) == 1
        assert answer["incident_id"] == iid and answer["verification"]["still_present"] is not None, answer
        cam = answer["source"]["camera_id"]
        answered_by = [n for n, w in workers.items() if '"req-1"' in w.log() and "verification published" in w.log()]
        assert answered_by == [owner[cam]], (answered_by, owner)
        for w in workers.values():
            assert "not_here" not in w.log() and "unknown_incident" not in w.log()

        # Close the work order: the next stay is held back on every worker.
        await send({"type": "work_order_closed", "incident_id": iid, "suppress_s": 600})
        closed_at = time.time()

        async def held_back_everywhere():
            held = {}
            for name, w in workers.items():
                async with httpx.AsyncClient(base_url=w.base, timeout=10, headers=w.headers) as api:
                    evs = (await api.get("/events", params={"status": "opened", "limit": 1000})).json()["events"]
                held[name] = [e for e in evs if e.get("suppressed") and ts(e) > closed_at]
            return held if all(held.values()) else None
        held = await wait_for(held_back_everywhere, 90, "the next stay held back on every worker")
        assert {e["source"]["camera_id"] for evs in held.values() for e in evs} == set(owner)

        dispatch = parse(await records(bootstrap, "xueliang.events"))
        new = [e for e in dispatch if e["status"] == "opened" and ts(e) > closed_at + 1]
        assert new == [], [(e["incident_id"], e["source"]["camera_id"], e["occurred_at"]) for e in new]
        suppressed_ids = {e["incident_id"] for evs in held.values() for e in evs}
        assert not [e for e in dispatch if e["incident_id"] in suppressed_ids
                    or any(s["incident_id"] in suppressed_ids for s in e["sources"])]
    finally:
        await producer.stop()
        await stop_all(workers.values())
