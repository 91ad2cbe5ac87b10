"""The payload decoder on hand-written vendor payloads: units, paths, clocks and every rejection reason."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ingest.sensor_input_config import BUILTIN_PROFILES, PayloadLimits, SensorInputConfig, TopicConfig
from ingest.sensor_decode import Decoder, Reading, Rejected

NOW = 1_750_000_000.0


def decoder(**limits) -> Decoder:
    cfg = SensorInputConfig(
        topics=[TopicConfig(pattern="city/{sensor_id}/dust", profile="dust"),
                TopicConfig(pattern="mg/+/{sensor_id}", profile="dust-mg"),
                TopicConfig(pattern="hydrant/{sensor_id}/#", profile="hydrant"),
                TopicConfig(pattern="gw/all", profile="by-id")],
        profiles={"by-id": {"values": {"open": {"path": "st", "type": "bool"}}, "sensor_id_path": "dev.sn"}},
    )
    return Decoder(cfg.topics, cfg.all_profiles(), {"d1": "dust", "h1": "hydrant", "m1": "manhole", "7": "manhole"},
                   PayloadLimits(**limits))


def test_every_sensor_kind_has_a_builtin_profile():
    assert {"smoke", "gas", "manhole", "water-level", "bin-fill", "dust", "hydrant", "ebike-charging"} <= set(BUILTIN_PROFILES)


def test_units_paths_and_device_time():
    d = decoder()
    r = d.decode("mg/x/d1", json.dumps({"PM10": "0.155", "PM25": 0.04, "t": (NOW - 5) * 1000}).encode(), NOW)
    assert isinstance(r, Reading) and r.values == {"pm10": pytest.approx(155.0), "pm25": pytest.approx(40.0)}
    assert r.device_time == pytest.approx(NOW - 5) and r.time == r.device_time and r.kind == "dust"
    r = d.decode("hydrant/h1/a/b", b'{"pressure_kpa": 350}', NOW)  # no timestamp: arrival time
    assert isinstance(r, Reading) and r.values == {"pressure": pytest.approx(0.35)} and r.device_time is None and r.time == NOW
    r = d.decode("gw/all", b'{"dev": {"sn": 7}, "st": 1}', NOW)
    assert isinstance(r, Reading) and r.sensor_id == "7" and r.values == {"open": True}


@pytest.mark.parametrize("topic, payload, reason, detail", [
    ("city/d1/dust", b"x" * 20_000, "oversized", "20000 bytes"),
    ("elsewhere/d1", b"{}", "unknown_topic", "no configured pattern"),
    ("city/d1/dust", b"\xff\xfe{", "not_json", "not JSON"),
    ("city/d1/dust", b"[1, 2]", "not_object", "list"),
    ("gw/all", b'{"dev": {"sn": true}, "st": 1}', "no_sensor_id", "dev.sn"),
    ("city/zz/dust", b'{"data": {"pm10": 1, "pm25": 1}}', "unknown_sensor", "'zz'"),
    ("city/d1/dust", b'{"data": {"pm10": 1}}', "missing_field", "data.pm25"),
    ("city/d1/dust", b'{"data": {"pm10": "12", "pm25": 1}}', "wrong_type", "data.pm10"),
    ("city/d1/dust", b'{"data": {"pm10": 1e999, "pm25": 1}}', "out_of_range", "not finite"),
    ("city/d1/dust", b'{"data": {"pm10": -3, "pm25": 1}}', "out_of_range", "outside [0, 20000]"),
    ("city/d1/dust", b'{"data": {"pm10": 1, "pm25": 1}, "time": "yesterday"}', "bad_timestamp", "ISO 8601"),
    ("city/d1/dust", b'{"data": {"pm10": 1, "pm25": 1}, "time": "2025-06-15T15:06:40"}', "bad_timestamp", "UTC offset"),
    ("city/d1/dust", b'{"data": {"pm10": 1, "pm25": 1}, "time": "2099-01-01T00:00:00+08:00"}', "time_future", "future"),
    ("city/d1/dust", b'{"data": {"pm10": 1, "pm25": 1}, "time": "2020-01-01T00:00:00+08:00"}', "time_past", "old"),
    ("mg/x/d1", b'{"PM10": 1, "PM25": 1, "t": 1e400}', "bad_timestamp", "not finite"),
])
def test_rejections_name_reason_and_field(topic, payload, reason, detail):
    r = decoder().decode(topic, payload, NOW)
    assert isinstance(r, Rejected), r
    assert (r.reason, r.topic, r.raw) == (reason, topic, payload)
    assert detail in r.detail


def test_config_errors_name_the_topic():
    with pytest.raises(ValidationError, match="unknown profile 'nope'"):
        SensorInputConfig(topics=[{"pattern": "a/{sensor_id}", "profile": "nope"}])
    with pytest.raises(ValidationError, match="nothing says which sensor"):
        SensorInputConfig(topics=[{"pattern": "a/+", "profile": "dust"}])
    with pytest.raises(ValidationError, match="mixes wildcards"):
        TopicConfig(pattern="a/b+/c", profile="dust")


def test_sensor_example_config_validates_and_errors_name_the_field(tmp_path):
    import yaml

    from tests.helpers import REPO
    from xueliang.config import ConfigError, load_config

    cfg = load_config(REPO / "configs" / "examples" / "sensors.yaml")
    assert len(cfg.sensors.devices) == 8 and not cfg.cameras
    doc = yaml.safe_load((REPO / "configs" / "examples" / "sensors.yaml").read_text())
    doc["grid"]["path"] = str(REPO / "configs" / "grids" / "demo-district.geojson")
    doc["sensors"]["devices"][1]["rules"][0]["category"] = "x.y"
    doc["sensors"]["devices"][2]["cameras"] = ["nowhere"]
    doc["sensors"]["devices"][3]["rules"][0]["above"] = "high"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "sensors.devices[3].rules[0].above" in str(err.value)
    doc["sensors"]["devices"][3]["rules"][0]["above"] = 0.15
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert "sensors.devices[1].rules[0].category: unknown category 'x.y'" in text
    assert "sensors.devices[2].cameras: no camera 'nowhere'" in text
