"""Sensor readings decoded and evaluated per second, against a bare paho receive loop, same run.

Both sides read the same number of QoS 1 messages that a real Mosquitto (started here, on
loopback) queued for their persistent sessions while they were offline, so both drain a full
queue as fast as they can:

bare:  a paho-mqtt 2.x client whose on_message only counts (paho acknowledges each message).
ours:  the service's sensor path: MqttSource (bounded hand-off to asyncio, manual acks after each
       batch) -> Decoder (JSON, field paths, scaling, range and clock checks) -> SensorEngine
       (threshold + rate rules, lifecycle) on 100 dust sensors, as `xueliang run` wires it.

This process is pinned to one core (the first allowed); Mosquitto runs on another when there is
one. Prints both rates and their ratio.

    python bench/mqtt_throughput.py [--messages 100000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.mosquitto import USERS, Mosquitto  # noqa: E402  (the test harness's broker)

SENSORS = 100
OFFLINE_RATE = 0.0
TOPIC = "bench/dust/{}/up"


def client(cid: str, user: str, **kw) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5, **kw)
    c.username_pw_set(user, USERS[user])
    return c


def register_session(port: int, cid: str) -> None:
    """Connect once with a persistent session and a subscription, then leave."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    c = client(cid, "ingest")
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    c.subscribe("bench/dust/+/up", qos=1)
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


def publish(port: int, n: int) -> None:
    c = client("bench-pub", "sensor")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.time() - n / 100
    last = None
    for i in range(n):
        ts = t0 + i / 100
        payload = json.dumps({"data": {"pm10": 40 + (i % 200), "pm25": 20 + (i % 50)},
                              "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))})
        last = c.publish(TOPIC.format(f"s{i % SENSORS}"), payload.encode(), qos=1)
    last.wait_for_publish(120)
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


def bare(port: int, n: int) -> float:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    got = 0
    first = None

    def on_message(c, u, m):
        nonlocal got, first
        if first is None:
            first = time.perf_counter()
        got += 1

    c = client("bench-bare", "ingest")
    c.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 10_000
    c.max_inflight_messages_set(10_000)
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    while got < n:
        c.loop(0.1)
    dt = time.perf_counter() - first
    c.disconnect()
    return got / dt


async def ours(port: int, n: int, tmp: Path) -> float:
    from bridge.catalogue import Catalogue
    from bridge.deadletters import DeadLetterStore
    from bridge.events import EventFactory
    from bridge.grid import GridIndex
    from xueliang.config import ServiceConfig
    from xueliang.sensors import SensorRuntime

    repo = Path(__file__).resolve().parents[1]
    rules = [{"id": "pm10", "type": "threshold", "value": "pm10", "above": 1000, "clear_at": 800,
              "min_duration_s": 60, "category": "environment.construction-dust"},
             {"id": "pm10-rise", "type": "rate", "value": "pm10", "change": 5000, "window_s": 60,
              "category": "environment.construction-dust"}]
    cfg = ServiceConfig.model_validate({
        "data_dir": str(tmp / "data"), "grid": {"path": str(repo / "configs/grids/demo-district.geojson")},
        "mqtt": {"port": port, "client_id": "bench-ours", "username": "ingest", "password": USERS["ingest"]},
        "sensors": {"topics": [{"pattern": "bench/dust/{sensor_id}/up", "profile": "dust"}],
                    "devices": [{"id": f"s{i}", "kind": "dust", "location": {"lon": 117.005, "lat": 36.655, "crs": "wgs84"},
                                 "rules": rules} for i in range(SENSORS)]},
    })
    factory = EventFactory(GridIndex.load(cfg.grid.path, cfg.grid.scheme, cfg.grid.crs), Catalogue.load(None))
    dl = DeadLetterStore(tmp / "dl.sqlite3")

    async def publish_event(event) -> None:
        raise AssertionError("the bench traffic should raise no incident")

    rt = SensorRuntime(cfg, factory, dl, publish_event)
    # Same decoder and rules without the broker: the CPU ceiling of our own per-message work.
    payloads = [(TOPIC.format(f"s{i % SENSORS}"), json.dumps({"data": {"pm10": 40 + i % 200, "pm25": 20},
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 30_000 + i))}).encode())
                for i in range(20_000)]
    from detectors.sensors import SensorEngine
    eng = SensorEngine({d.id: list(d.rules) for d in cfg.sensors.devices}, time.time())
    t = time.perf_counter()
    for topic, p in payloads:
        eng.feed(rt.decoder.decode(topic, p, time.time()))
    global OFFLINE_RATE
    OFFLINE_RATE = len(payloads) / (time.perf_counter() - t)
    first = None
    orig = rt.handle

    async def handle(batch):
        nonlocal first
        if first is None:
            first = time.perf_counter()
        await orig(batch)
    rt.handle = handle  # type: ignore[method-assign]
    await rt.start()
    task = asyncio.create_task(rt.run())
    while rt.readings + rt.rejected < n:
        await asyncio.sleep(0.01)
    dt = time.perf_counter() - first
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    dl.close()
    assert rt.rejected == 0 and rt.readings == n, (rt.rejected, rt.readings)
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    args = ap.parse_args()
    n = args.messages
    tmp = Path(tempfile.mkdtemp(prefix="mqtt-bench-"))
    broker = Mosquitto(tmp / "mosquitto", max_inflight=10_000, persistence=False)
    broker.conf.write_text(broker.conf.read_text().replace("max_queued_messages 100000", f"max_queued_messages {2 * n + 10}"))
    broker.start()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(broker.proc.pid, set(cpus[1:]))
    os.sched_setaffinity(0, {cpus[0]})
    try:
        for cid in ("bench-bare", "bench-ours"):
            register_session(broker.port, cid)
        # ours' client id subscribes through MqttSource with the same filter; register it first
        t = time.perf_counter()
        publish(broker.port, n)
        print(f"published {n} QoS 1 messages for two sessions in {time.perf_counter() - t:.1f} s")
        bare_rate = bare(broker.port, n)
        ours_rate = asyncio.run(ours(broker.port, n, tmp))
    finally:
        broker.stop()
    load = os.getloadavg()
    print(json.dumps({
        "messages": n, "bare_paho_msgs_per_s": round(bare_rate), "ours_readings_per_s": round(ours_rate),
        "ratio": round(ours_rate / bare_rate, 3),
        "decode_evaluate_only_per_s": round(OFFLINE_RATE), "python": platform.python_version(),
        "paho": mqtt.__version__ if hasattr(mqtt, "__version__") else __import__("paho.mqtt").mqtt.__version__,
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "pinned_to_core": cpus[0],
        "loadavg": [round(x, 2) for x in load],
    }, indent=1))


if __name__ == "__main__":
    main()
