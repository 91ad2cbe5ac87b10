"""`xueliang sensors simulate`: publish realistic readings for the configured sensors (demo, soak).

Each sensor of the config gets a scripted behaviour for its kind (a smoke alarm that goes off for
20 s every 90 s, water rising after rain, a bin filling up, dust hovering around its limit) and
publishes on the topic of the profile named after its kind, in that profile's vendor format
(field paths, units, timestamp format), QoS 1. The service config is the root's, read duck-typed
(`mqtt`, `sensors.devices`, `sensors.topics`, `sensors.all_profiles()`).
"""
from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any

import paho.mqtt.client as mqtt
import structlog

from ingest.sensor_input_config import DecoderProfile

log = structlog.get_logger(__name__)

# Value name -> f(t seconds since start) in canonical units, per sensor kind.
BEHAVIOUR = {
    "smoke": {"smoke": lambda t: (t % 90) >= 70, "battery": lambda t: 80.0},
    "gas": {"lel": lambda t: 30.0 if (t % 120) >= 90 else 3.0, "battery": lambda t: 75.0},
    "manhole": {"tilt": lambda t: 2.0, "open": lambda t: False, "battery": lambda t: 60.0},
    "water-level": {"level": lambda t: max(0.0, 0.25 * math.sin(2 * math.pi * t / 180)), "battery": lambda t: 90.0},
    "bin-fill": {"fill": lambda t: 40.0 + 60.0 * ((t % 150) / 150), "battery": lambda t: 70.0},
    "dust": {"pm10": lambda t: 150.0 + 25.0 * math.sin(2 * math.pi * t / 60), "pm25": lambda t: 60.0},
    "hydrant": {"pressure": lambda t: 0.3, "battery": lambda t: 88.0},
    "ebike-charging": {"current": lambda t: 3.5, "temperature": lambda t: 45.0 + 30.0 * ((t % 200) >= 150),
                       "smoke": lambda t: False},
}


def payload(profile: DecoderProfile, values: dict[str, float | bool], now: float) -> bytes:
    """A vendor message: canonical values written back into the profile's paths and units."""
    doc: dict = {}

    def put(path: str, value) -> None:
        node = doc
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    for name, field in profile.values.items():
        if name not in values:
            continue
        v = values[name]
        if field.type == "bool":
            put(field.path, bool(v))
        else:
            raw = (float(v) - field.offset) / field.scale
            put(field.path, str(round(raw, 4)) if field.strings else round(raw, 4))
    if profile.time_path:
        stamp = {"unix_s": int(now), "unix_ms": int(now * 1000),
                 "iso8601": datetime.fromtimestamp(now, timezone.utc).isoformat()}[profile.time_format]
        put(profile.time_path, stamp)
    return json.dumps(doc).encode()


def simulate(cfg: Any, period_s: float = 2.0, duration_s: float | None = None) -> int:
    if cfg.mqtt is None or not cfg.sensors.devices:
        raise ValueError("the config has no `mqtt:` broker or no `sensors.devices` to simulate")
    profiles = cfg.sensors.all_profiles()
    topics = {t.profile: t.pattern for t in cfg.sensors.topics}
    plan = []
    for dev in cfg.sensors.devices:
        pattern = topics.get(dev.kind)
        if pattern is None or dev.kind not in BEHAVIOUR:
            log.warning("simulate.skipped", sensor=dev.id, kind=dev.kind, reason="no topic with a profile of that kind")
            continue
        topic = "/".join("demo" if level == "+" else level for level in pattern.replace("{sensor_id}", dev.id).split("/"))
        plan.append((dev.id, topic, profiles[dev.kind], BEHAVIOUR[dev.kind]))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"simulator-{int(time.time())}")
    if cfg.mqtt.username:
        client.username_pw_set(cfg.mqtt.username, cfg.mqtt.password.get_secret_value() if cfg.mqtt.password else None)
    if cfg.mqtt.tls is not None:
        client.tls_set(ca_certs=str(cfg.mqtt.tls.ca_file) if cfg.mqtt.tls.ca_file else None)
    client.connect_async(cfg.mqtt.host, cfg.mqtt.port)
    client.loop_start()
    start, sent = time.time(), 0
    try:
        while duration_s is None or time.time() - start < duration_s:
            now = time.time()
            for sensor_id, topic, profile, behaviour in plan:
                values = {name: fn(now - start) for name, fn in behaviour.items()}
                client.publish(topic, payload(profile, values, now), qos=1)
                sent += 1
            time.sleep(period_s)
    finally:
        client.loop_stop()
        client.disconnect()
    return sent
