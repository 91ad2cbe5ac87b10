"""Sensor rules and their lifecycle, without a broker: pure functions fed by hand-made readings."""
from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from detectors.rules import sensor as rules
from detectors.sensor_rule_config import SensorRuleConfig
from detectors.sensor_engine import SensorEngine
from ingest.sensor_decode import Reading

RULE = TypeAdapter(SensorRuleConfig)


def rule(**kw):
    return RULE.validate_python({"category": "environment.construction-dust", **kw})


def reading(sid: str, t: float, **values) -> Reading:
    return Reading(sid, "dust", values, t, t, b"{}", f"t/{sid}")


def statuses(changes):
    return [(c.status, c.rule_id, c.at) for c in changes]


def test_threshold_hysteresis_and_min_duration():
    p = rule(id="pm10", type="threshold", value="pm10", above=150, clear_at=120, min_duration_s=60)
    st, out = rules.LevelState(), []
    for t, v in [(0, 160), (30, 170), (59, 155), (60, 151), (90, 140), (120, 125), (150, 119), (180, 160)]:
        st, cond = rules.threshold(p, st, v, t)
        out.append(cond is not None)
    # fires once 60 s above; stays through 140 and 125 (above clear_at); clears at 119; re-arms at 160
    assert out == [False, False, False, True, True, True, False, False]


def test_threshold_below_and_interrupted_duration():
    p = rule(id="low-pressure", type="threshold", value="pressure", below=0.15, clear_at=0.2, min_duration_s=10)
    st = rules.LevelState()
    st, c1 = rules.threshold(p, st, 0.1, 0)
    st, c2 = rules.threshold(p, st, 0.3, 5)  # interruption resets the duration
    st, c3 = rules.threshold(p, st, 0.1, 8)
    st, c4 = rules.threshold(p, st, 0.1, 17)
    st, c5 = rules.threshold(p, st, 0.1, 18)
    assert (c1, c2, c3, c4) == (None, None, None, None) and c5 is not None and c5.since == 8


def test_alarm_rate_battery_offline():
    a = rule(id="smoke", type="alarm", value="smoke")
    st, c = rules.alarm(a, rules.LevelState(), True, 5)
    assert c is not None and c.since == 5
    assert rules.alarm(a, st, False, 6)[1] is None

    r = rule(id="rising", type="rate", value="level", change=0.3, window_s=600)
    st, out = rules.RateState(), []
    for t, v in [(0, 0.1), (300, 0.2), (600, 0.45), (1200, 0.5), (1800, 0.5)]:
        st, c = rules.rate(r, st, v, t)
        out.append(c is not None)
    assert out == [False, False, True, False, False]

    b = rule(id="battery", type="low_battery", below=20, clear_at=30)
    st, c = rules.low_battery(b, rules.LevelState(), 19, 0)
    assert c is not None
    st, c = rules.low_battery(b, st, 25, 1)  # above `below` but not above clear_at: still low
    assert c is not None
    assert rules.low_battery(b, st, 95, 2)[1] is None

    o = rule(id="offline", type="offline", heartbeat_s=60)
    assert rules.offline(o, 100, 160) is None
    assert rules.offline(o, 100, 160.5).since == 160


def test_flapping_value_opens_exactly_one_incident():
    p = rule(id="pm10", type="threshold", value="pm10", above=150, clear_at=120, min_duration_s=0, update_interval_s=1e9)
    eng = SensorEngine({"dust-1": [p]}, started_at=0)
    changes = []
    for i in range(200):  # 149, 151, 149, 151, ...: flapping around the trigger
        changes += eng.feed(reading("dust-1", float(i), pm10=151.0 if i % 2 else 149.0))
    assert statuses(changes) == [("opened", "pm10", 1.0)]
    changes = eng.feed(reading("dust-1", 300.0, pm10=100.0))
    assert statuses(changes) == [("cleared", "pm10", 300.0)]


def test_updates_at_most_every_interval_and_one_incident_per_rule():
    rules_ = [rule(id="pm10", type="threshold", value="pm10", above=150, clear_at=120, update_interval_s=60),
              rule(id="pm25", type="threshold", value="pm25", above=75, clear_at=50, update_interval_s=60)]
    eng = SensorEngine({"dust-1": rules_}, started_at=0)
    changes = []
    for t in range(0, 181, 10):
        changes += eng.feed(reading("dust-1", float(t), pm10=200.0, pm25=80.0))
    opened = [c for c in changes if c.status == "opened"]
    assert sorted(c.rule_id for c in opened) == ["pm10", "pm25"]
    assert [c.at for c in changes if c.rule_id == "pm10" and c.status == "updated"] == [60.0, 120.0, 180.0]
    assert len({c.incident_id for c in changes}) == 2


def test_late_readings_never_move_rule_time_backwards():
    p = rule(id="pm10", type="threshold", value="pm10", above=150, clear_at=120, min_duration_s=60)
    eng = SensorEngine({"d": [p]}, started_at=0)
    assert eng.feed(reading("d", 100, pm10=200.0)) == []
    assert eng.feed(reading("d", 50, pm10=200.0)) == []  # older timestamp: judged at t=100
    assert statuses(eng.feed(reading("d", 160, pm10=200.0))) == [("opened", "pm10", 160)]


def test_offline_on_wall_clock_and_back_online():
    o = rule(id="offline", type="offline", heartbeat_s=30, category="maintenance.sensor-fault")
    eng = SensorEngine({"s": [o]}, started_at=1000.0)
    assert eng.tick(1030.0) == []
    assert statuses(eng.tick(1030.5)) == [("opened", "offline", 1030.5)]
    assert eng.tick(1031.0) == []
    assert statuses(eng.feed(reading("s", 1040.0))) == [("cleared", "offline", 1040.0)]
    assert eng.tick(1069.0) == []


@pytest.mark.parametrize("doc, msg", [
    ({"id": "x", "type": "threshold", "value": "v", "clear_at": 1}, "exactly one of"),
    ({"id": "x", "type": "threshold", "value": "v", "above": 10, "clear_at": 11}, "clear_at"),
    ({"id": "x", "type": "rate", "value": "v", "change": 0, "window_s": 5}, "change must not be 0"),
    ({"id": "x", "type": "offline", "heartbeat_s": -1}, "greater than 0"),
    ({"id": "x", "type": "teleport"}, "threshold"),
])
def test_rule_config_errors(doc, msg):
    with pytest.raises(ValidationError, match=msg):
        rule(**doc)


def test_rate_window_keeps_exactly_the_readings_inside_it():
    """The window drops expired readings as a prefix; on time-ordered readings (repeated times
    included) it must hold exactly those within window_s of the newest, as the definition says."""
    import random

    rng = random.Random(7)
    r = rule(id="rising", type="rate", value="level", change=5, window_s=10)
    st, t, seen = rules.RateState(), 0.0, []
    for _ in range(2000):
        t += rng.choice([0.0, 0.5, 1.0, 3.0, 12.0])
        v = rng.uniform(0, 10)
        st, c = rules.rate(r, st, v, t)
        seen.append((t, v))
        expected = tuple(w for w in seen if t - w[0] <= 10)
        assert st.window == expected
        assert (c is not None) == (v - expected[0][1] >= 5)
