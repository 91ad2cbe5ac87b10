"""Clustered sensors: MQTT shared subscriptions split the feed over workers message by message,
and each sensor's readings still meet in one rule engine (re-keyed through Kafka by sensor id).

Two worker processes, a real Mosquitto and a real noida-db. A water gauge reports 10 s above its
threshold, then 10 s below: one incident, opened and cleared once. Evaluated where they arrive,
each worker would see every other reading, still 10 s above, and report it twice.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

from tests.cluster_harness import parse, records
from tests.mosquitto import USERS
from tests.service_proc import ServiceProcess, demo_config, stop_all, wait_for
from tests.test_mqtt_sensors import publish_all, publisher


def sensor_worker(tmp_path, name: str, bootstrap: str, mqtt_port: int) -> ServiceProcess:
    home = tmp_path / name
    home.mkdir()
    doc = demo_config(home, kafka={"bootstrap_servers": bootstrap, "feedback_topic": None})
    doc["cameras"] = []
    doc["cluster"] = {"enabled": True, "worker_id": name, "incidents_partitions": 4, "control_partitions": 4,
                      "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
    doc["mqtt"] = {"port": mqtt_port, "username": "ingest", "password": USERS["ingest"], "client_id": "xl",
                   "shared_group": "xueliang"}
    doc["sensors"] = {
        "topics": [{"pattern": "acme/water/{sensor_id}/up", "profile": "water-level"}],
        "devices": [{"id": "water-7", "kind": "water-level", "location": {"lon": 117.015, "lat": 36.665, "crs": "wgs84"},
                     "rules": [{"id": "waterlogging", "type": "threshold", "value": "level", "above": 0.15,
                                "clear_at": 0.05, "min_duration_s": 5, "category": "municipal.waterlogging"}]}],
    }
    return ServiceProcess(home, doc)


async def test_one_sensors_readings_meet_in_one_engine_across_workers(tmp_path, mosquitto, kafka_broker):
    b = kafka_broker.bootstrap
    workers = [sensor_worker(tmp_path, n, b, mosquitto.port) for n in ("s1", "s2")]
    try:
        await asyncio.gather(*(w.__aenter__() for w in workers))
        await asyncio.sleep(8)  # both in the shared subscription and the sensor group
        t0 = int(time.time()) - 30
        msgs = [("acme/water/water-7/up", json.dumps({"level_cm": 30 if i < 10 else 0, "battery": 80, "ts": t0 + i}).encode())
                for i in range(20)]
        pub = publisher(mosquitto)
        for m in msgs:  # a gauge's pace (sped up): each reading is forwarded before the next arrives
            publish_all(pub, [m])
            await asyncio.sleep(0.25)
        pub.loop_stop()

        async def closed():
            evs = [e for e in parse(await records(b, "xueliang.events")) if e["source"].get("sensor_id") == "water-7"]
            return evs if any(e["status"] == "cleared" for e in evs) else None
        evs = await wait_for(closed, 60, "the waterlogging incident opened and cleared")
        await asyncio.sleep(3)
        evs = [e for e in parse(await records(b, "xueliang.events")) if e["source"].get("sensor_id") == "water-7"]
        received = [len([1 for line in w.log().splitlines() if '"sensor.rejected"' in line]) for w in workers]
    finally:
        await stop_all(workers)
    assert [e["status"] for e in evs if e["status"] != "updated"] == ["opened", "cleared"], evs
    assert len({e["incident_id"] for e in evs}) == 1
    # Opened on the device clock, 5 s into the rise: the engine saw every reading, not every other one.
    assert abs(datetime.fromisoformat(evs[0]["occurred_at"]).timestamp() - (t0 + 5)) <= 1
    assert received == [0, 0]
