"""Sensor feeds against a real Mosquitto started by the harness (tests/mosquitto.py): TLS and
password auth, a persistent session across a broker restart while the service is down,
hysteresis, offline detection and 10,000 fuzzed payloads. The service runs in-process with a
sensors-only config (no cameras, so no model is loaded)."""
from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bridge.http.auth import new_token
from ingest.mqtt import MqttRefused, MqttSource
from ingest.sensor_input_config import MqttConfig
from tests.helpers import REPO
from tests.mosquitto import USERS
from xueliang.config import ServiceConfig
from xueliang.service import Service

GRID = REPO / "configs" / "grids" / "demo-district.geojson"
IN_GRID = {"lon": 117.005, "lat": 36.655, "crs": "wgs84"}  # the demo camera's spot, grid 990001001002002


def publisher(broker, client_id="pub") -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set("sensor", USERS["sensor"])
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def publish_all(c: mqtt.Client, msgs: list[tuple[str, bytes]]) -> None:
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for i in infos:
        i.wait_for_publish(30)
        assert i.is_published()


TOKEN, TOKEN_RECORD = new_token("mqtt tests", "admin")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def service_cfg(tmp_path, broker, devices, *, protocol="5", client_id="xl-test", tls=True, password=USERS["ingest"],
                **sensors) -> ServiceConfig:
    doc = {
        "data_dir": str(tmp_path / "data"),
        "grid": {"path": str(GRID)},
        "outbox": {"path": str(tmp_path / "outbox.sqlite3"), "fsync": False},
        "api": {"port": 0, "auth": {"tokens": [TOKEN_RECORD.model_dump(exclude_none=True)],
                                    "tokens_file": str(tmp_path / "tokens.yaml")},
                "console_db": str(tmp_path / "console.sqlite3")},
        "mqtt": {"port": broker.tls_port if tls else broker.port, "protocol": protocol, "client_id": client_id,
                 "username": "ingest", "password": password,
                 **({"tls": {"ca_file": str(broker.ca)}} if tls else {})},
        "sensors": {"topics": [{"pattern": "city/dust/{sensor_id}/up", "profile": "dust"},
                               {"pattern": "city/smoke/{sensor_id}", "profile": "smoke"}],
                    "devices": devices, "offline_check_s": 0.2, **sensors},
    }
    return ServiceConfig.model_validate(doc)


def dust(sid, rules=(), **kw):
    return {"id": sid, "kind": "dust", "location": IN_GRID, "rules": list(rules), **kw}


def dust_payload(pm10: float, ts: float, seq: int = 0) -> bytes:
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}+00:00"
    return json.dumps({"data": {"pm10": pm10, "pm25": 10, "seq": seq}, "time": iso}).encode()


class Running:
    """The service in this event loop, stopped cleanly on exit."""

    def __init__(self, cfg: ServiceConfig) -> None:
        self.service = Service(cfg)

    async def __aenter__(self) -> Service:
        self.task = asyncio.create_task(self.service.run())
        deadline = time.monotonic() + 20
        while not self.service.ready:
            if self.task.done():
                self.task.result()
            assert time.monotonic() < deadline, "service did not become ready"
            await asyncio.sleep(0.05)
        return self.service

    async def __aexit__(self, *exc) -> None:
        self.service.stopping.set()
        await asyncio.wait_for(self.task, 20)


async def until(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def outbox_events(cfg: ServiceConfig) -> list[dict]:
    with sqlite3.connect(cfg.outbox_path) as db:
        return [json.loads(p) for (p,) in db.execute("SELECT payload FROM events ORDER BY seq")]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_tls_and_password_connect_and_wrong_credentials_refused(mosquitto, protocol):
    ok = MqttSource(MqttConfig(port=mosquitto.tls_port, protocol=protocol, client_id=f"ok-{protocol}",
                               username="ingest", password=USERS["ingest"], tls={"ca_file": mosquitto.ca}),
                    ["city/#"])
    await ok.start()
    assert ok.status.connected
    pub = publisher(mosquitto)
    await until(lambda: ok.status.connects == 1, 5, "subscription")
    await asyncio.sleep(0.3)  # the SUBSCRIBE goes out right after CONNACK
    publish_all(pub, [("city/x", b"hello")])
    batch = await asyncio.wait_for(ok.get_batch(), 5)
    assert [(m.topic, m.payload) for m in batch] == [("city/x", b"hello")]
    ok.ack(batch)
    ok.stop()
    pub.loop_stop()

    bad = MqttSource(MqttConfig(port=mosquitto.tls_port, protocol=protocol, client_id=f"bad-{protocol}",
                                username="ingest", password="wrong", tls={"ca_file": mosquitto.ca}), ["city/#"])
    with pytest.raises(MqttRefused, match=r"mqtts://127\.0\.0\.1:\d+ refused client 'bad-.*' \(user 'ingest'\): "
                                          r"(Not authorized|Bad user name or password)"):
        await bad.start()


async def test_wrong_credentials_stop_the_service_with_a_clear_error(mosquitto, tmp_path):
    cfg = service_cfg(tmp_path, mosquitto, [dust("d1")], password="wrong")
    with pytest.raises(MqttRefused, match="user 'ingest'"):
        await asyncio.wait_for(Service(cfg).run(), 20)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_broker_restart_while_service_down_every_reading_once(mosquitto, tmp_path, protocol):
    sensors = [f"d{i}" for i in range(10)]
    cfg = service_cfg(tmp_path, mosquitto, [dust(s) for s in sensors], protocol=protocol)
    async with Running(cfg) as svc:  # first run: the broker learns the persistent session
        assert svc.sensors.source.status.connected
        await asyncio.sleep(0.3)
    mosquitto.restart()
    pub = publisher(mosquitto)
    t0 = time.time() - 2000
    msgs = [(f"city/dust/{s}/up", dust_payload(50 + n, t0 + n, seq=n)) for n in range(100) for s in sensors]
    await asyncio.to_thread(publish_all, pub, msgs)
    pub.disconnect()
    pub.loop_stop()
    mosquitto.restart()  # the queued messages must survive this too
    async with Running(cfg) as svc:
        await until(lambda: svc.sensors.readings >= 1000, 30, "1000 readings")
        await asyncio.sleep(1.0)  # anything delivered twice would show up now
        assert svc.sensors.readings == 1000
        assert svc.sensors.duplicates == 0 and svc.sensors.rejected == 0
        assert {v["id"]: v["readings"] for v in svc.sensors.views()} == {s: 100 for s in sensors}


async def test_flapping_value_opens_exactly_one_incident_and_silent_sensor_goes_offline(mosquitto, tmp_path):
    devices = [
        dust("dust-1", [{"id": "pm10-high", "type": "threshold", "value": "pm10", "above": 150, "clear_at": 120,
                         "category": "environment.construction-dust", "update_interval_s": 3600}]),
        {"id": "smoke-1", "kind": "smoke", "location": IN_GRID,
         "rules": [{"id": "offline", "type": "offline", "heartbeat_s": 2.0, "category": "maintenance.sensor-fault"}]},
    ]
    cfg = service_cfg(tmp_path, mosquitto, devices)
    async with Running(cfg):
        pub = publisher(mosquitto)
        now = time.time()
        flaps = [("city/dust/dust-1/up", dust_payload(151 if i % 2 else 149, now - 60 + i)) for i in range(60)]
        await asyncio.to_thread(publish_all, pub, flaps + [("city/smoke/smoke-1", b'{"alarm": false}')])
        last_heard = time.time()
        await until(lambda: any(e["detector"]["rule"] == "offline" for e in outbox_events(cfg)), 10, "offline event")
        detected = time.time()
        await asyncio.to_thread(publish_all, pub, [("city/smoke/smoke-1", b'{"alarm": false, "battery": 90}')])
        await until(lambda: [e["status"] for e in outbox_events(cfg) if e["detector"]["rule"] == "offline"]
                    == ["opened", "cleared"], 10, "back online")
        pub.loop_stop()
    events = outbox_events(cfg)
    pm10 = [e for e in events if e["detector"]["rule"] == "pm10-high"]
    assert [e["status"] for e in pm10] == ["opened"]
    ev = pm10[0]
    assert ev["source"] == {"kind": "iot", "camera_id": None, "sensor_id": "dust-1", "zone": None, "media_time_s": None,
                            "worker": None, "generation": None}
    assert ev["grid"]["code"] == "990001001002002" and ev["category"]["code"] == "environment.construction-dust"
    assert ev["detector"]["model"] == "sensor:dust"
    # heartbeat 2 s, checked every 0.2 s: offline between 2 s and ~2.6 s after the last message
    assert 2.0 <= detected - last_heard <= 3.5, detected - last_heard
    off = [e for e in events if e["detector"]["rule"] == "offline"]
    assert off[0]["source"]["sensor_id"] == "smoke-1" and off[0]["incident_id"] == off[1]["incident_id"]


def fuzz(rng: random.Random, i: int) -> tuple[str, bytes]:
    good_ts = time.time()
    kind = i % 10
    if kind == 0:
        return "city/dust/d1/up", bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if kind == 1:
        return "city/dust/d1/up", dust_payload(10, good_ts)[: rng.randint(0, 30)]  # broken JSON
    if kind == 2:
        return "city/dust/d1/up", json.dumps({"data": {"pm10": rng.choice(["x", None, [], {}, True]), "pm25": 1}}).encode()
    if kind == 3:
        if rng.random() < 0.5:  # numbers no float holds, and JSON's non-numbers
            big = rng.choice([b"1e400", b"-1e999", b"NaN", b"Infinity", b"-Infinity", b"9" * 400 + b".5"])
            return "city/dust/d1/up", b'{"data": {"pm10": ' + big + b', "pm25": 1}}'
        return "city/dust/d1/up", json.dumps({"data": {"pm10": rng.choice([1e308, -1e308, 1e300, 99999, -1]), "pm25": 1}}).encode()
    if kind == 4:
        return "city/dust/d1/up", b'{"data": {"pm10": 1' + b"0" * rng.randint(400, 5000) + b', "pm25": 1}}'
    if kind == 5:
        return f"city/dust/ghost-{rng.randint(0, 10**6)}/up", dust_payload(10, good_ts)
    if kind == 6:
        return "city/dust/d1/up", dust_payload(10, good_ts + rng.choice([3600, 10**6]))  # future
    if kind == 7:
        return "city/dust/d1/up", dust_payload(10, good_ts - 30 * 86400)  # too old
    if kind == 8:
        return "city/dust/d1/up", b'{"data": {"pm10": 1, "pm25": 1}, "pad": "' + b"x" * 20_000 + b'"}'  # oversized
    return "city/dust/d1/up", rng.choice([b"[]", b"42", b'"str"', b"null", b'{"data": 5}', b"{}"])


async def test_fuzzed_payloads_are_dead_lettered_and_valid_traffic_flows(mosquitto, tmp_path):
    cfg = service_cfg(tmp_path, mosquitto, [dust("d1"), dust("d2")])
    rng = random.Random(4)
    async with Running(cfg) as svc:
        pub = publisher(mosquitto)
        now = time.time()
        msgs = []
        for i in range(10_000):
            msgs.append(fuzz(rng, i))
            if i % 50 == 0:  # 200 valid readings interleaved
                msgs.append(("city/dust/d2/up", dust_payload(20 + i % 7, now - 10_000 + i, seq=i)))
        await asyncio.to_thread(publish_all, pub, msgs)
        await until(lambda: svc.sensors.rejected + svc.sensors.readings >= 10_200, 60, "all messages handled")
        assert svc.sensors.rejected == 10_000 and svc.sensors.readings == 200
        assert svc.ready and svc.sensors.source.status.connected
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.api_port}", headers=AUTH) as http:
            page = (await http.get("/deadletters", params={"limit": 5})).json()
            assert sum(page["counts"].values()) == 10_000
            assert {"oversized", "not_json", "wrong_type", "out_of_range", "unknown_sensor", "time_future",
                    "time_past", "not_object", "missing_field"} <= set(page["counts"])
            item = (await http.get("/deadletters", params={"reason": "unknown_sensor", "limit": 1})).json()["items"][0]
            assert item["sensor_id"].startswith("ghost-") and item["topic"].startswith("city/dust/ghost-")
            assert json.loads(item["payload"])["data"]["pm10"] == 10
            raw = (await http.get("/deadletters", params={"reason": "oversized", "limit": 1})).json()["items"][0]
            assert raw["size"] > 20_000 and "16384" in raw["detail"]
            metrics = (await http.get("/metrics")).text
            assert 'xueliang_sensor_rejected_total{reason="not_json"}' in metrics
            sensors = {s["id"]: s for s in (await http.get("/sensors")).json()}
            assert sensors["d2"]["readings"] == 200 and sensors["d1"]["readings"] == 0
        pub.loop_stop()
