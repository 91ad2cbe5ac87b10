"""What a restart reads back from a real outbox file (bridge/resume.py), without a model:
merged incidents, sensors, and sources no longer configured. The camera path end to end, with a
killed `xueliang run`, is in tests/test_restart_incidents.py."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from types import SimpleNamespace

from bridge.bridge_config import LocationConfig
from bridge.events.builder import SensorContext, make_sensor_event
from bridge.feedback.messages import SuppressionGate
from bridge.merging.rewrite import MergeConfig, MergeStage
from bridge.store.outbox import EventStore
from bridge.feedback.verify import PendingVerification, verification_event
from detectors.lifecycle import IncidentChange, Lifecycle
from detectors.rules.condition import Condition
from detectors.sensor_engine import SensorEngine
from tests.test_merge_stage import FACTORY, T0, camera, event
from tests.test_sensor_rules import reading, rule
from bridge.resume import read_open, resume


async def stored(tmp_path, events, suppressed=()) -> EventStore:
    store = EventStore(tmp_path / "outbox.sqlite3")
    for i, ev in enumerate(events):
        await store.append(ev, "work order closed" if i in suppressed else None)
    return store


def sensor_opened(sensor: str, kind: str, rule_id: str, category: str, incident_id: str):
    """A sensor's context, the `opened` event of one of its incidents and its time (100 s ago)."""
    ctx = SensorContext(sensor, kind, LocationConfig(lon=117.005, lat=36.655, crs="wgs84"), {rule_id: category}, "h")
    t0 = time.time() - 100
    cond = Condition(rule_id, None, t0, 1.0, None)
    opened = make_sensor_event(FACTORY, IncidentChange("opened", incident_id, sensor, rule_id, None, t0, t0, cond),
                               ctx, datetime.fromtimestamp(t0).astimezone())
    return ctx, opened, t0


async def test_a_merged_incident_goes_on_where_the_platform_knows_it(tmp_path):
    before = MergeStage(MergeConfig(radius_m=50, window_s=300))
    a, b, far = camera("a", 0), camera("b", 30), camera("far", 400)
    raw = [event(a, "opened", "a1", 0), event(b, "opened", "b1", 20), event(far, "opened", "f1", 25),
           event(a, "cleared", "a1", 60), event(far, "cleared", "f1", 70)]
    out = [before.apply(e) for e in raw]
    # The platform asked about f1 after it cleared: its latest row is a `verified` answer.
    asked = PendingVerification("r1", out[-1].model_dump(mode="json"), "far", "z", "r")
    store = await stored(tmp_path, [*out, verification_event(asked, datetime.now().astimezone(), False)])
    carried = read_open(store.path)
    # Only b's incident is still open, inside the merged incident a1 the platform knows.
    assert [(i.source_id, i.incident_id, i.merged_id, i.rule, i.zone) for i in carried.incidents] == \
        [("b", "b1", "a1", "r", "z")]
    assert carried.incidents[0].opened_at == (T0 + timedelta(seconds=20)).timestamp()
    assert len(carried.replay) == 3  # a1's three merged events; f1 is over

    after, published = MergeStage(MergeConfig(radius_m=50, window_s=300)), []

    async def publish(ev):
        published.append(after.apply(ev))

    counts = await resume(carried, cameras={}, sensors=None, merge=after, gate=SuppressionGate(), publish=publish,
                          confirm_s=5)
    assert counts == {"carried": 0, "cleared": 1}
    [gone] = published  # camera b is gone from the config: the merged incident ends, with the reason
    assert (gone.incident_id, gone.status) == ("a1", "cleared")
    assert gone.clear_reason == "restart: camera b is no longer configured"
    assert [(s.camera_id, s.active) for s in gone.sources] == [("a", False), ("b", False)]
    assert after.merger.by_grid == {}
    store.close()


async def test_a_sensor_incident_goes_on_under_its_id_and_a_held_back_one_stays_held(tmp_path):
    ctx, opened, t0 = sensor_opened("dust-1", "dust", "pm10", "environment.construction-dust", "s1")
    store = await stored(tmp_path, [opened], suppressed={0})
    engine = SensorEngine({"dust-1": [rule(id="pm10", type="threshold", value="pm10", above=150, clear_at=120)]},
                          started_at=time.time())
    gate, published = SuppressionGate(), []

    async def publish(ev):
        published.append(ev)

    counts = await resume(read_open(store.path), cameras={}, sensors=SimpleNamespace(engine=engine), merge=None,
                          gate=gate, publish=publish, confirm_s=5)
    assert counts == {"carried": 1, "cleared": 0} and published == []
    now = time.time()
    # Between the clear level and the trigger: the restored hysteresis keeps it open, under its id.
    changes = engine.feed(reading("dust-1", now + 1, pm10=130))
    assert [(c.status, c.incident_id, round(c.opened_at, 3)) for c in changes] == [("updated", "s1", round(t0, 3))]
    # Its `opened` was kept back (closed work order): so are the rest of it.
    assert gate.check(make_sensor_event(FACTORY, changes[0], ctx, datetime.now().astimezone()), now) == \
        "work order closed"
    changes = engine.feed(reading("dust-1", now + 2, pm10=100))
    assert [(c.status, c.incident_id, c.reason) for c in changes] == [("cleared", "s1", None)]
    store.close()


async def test_a_sensor_incident_not_seen_again_clears_with_a_reason(tmp_path):
    _, opened, _ = sensor_opened("smoke-1", "smoke", "smoke", "safety.fire-smoke", "s2")
    store = await stored(tmp_path, [opened])
    engine = SensorEngine({"smoke-1": [rule(id="smoke", type="alarm", value="smoke", category="safety.fire-smoke",
                                             min_duration_s=10)]}, started_at=time.time())

    async def publish(ev):
        raise AssertionError(f"nothing to publish at start: {ev}")

    await resume(read_open(store.path), cameras={}, sensors=SimpleNamespace(engine=engine), merge=None,
                 gate=SuppressionGate(), publish=publish, confirm_s=5)
    now = time.time()
    # The level state came back with it, so an alarm still on carries it on; a false one ends the
    # alarm, and the incident clears once the window (5 s + the rule's 10 s) has passed unseen.
    assert engine.feed(reading("smoke-1", now + 1, smoke=False)) == []
    changes = engine.feed(reading("smoke-1", now + 16, smoke=False))
    assert [(c.status, c.incident_id) for c in changes] == [("cleared", "s2")]
    assert changes[0].reason == "restart: its condition was not seen again within 15 s"
    store.close()


async def test_two_open_incidents_of_one_rule_in_one_zone_stay_two(tmp_path):
    """Object rules (dumping: one incident per bag) can have several open in one zone; track ids
    mean nothing after a restart, so each gets its own placeholder until a subject claims it."""
    a = camera("a", 0)
    store = await stored(tmp_path, [event(a, "opened", "bag-1", 0), event(a, "opened", "bag-2", 5)])
    lc = Lifecycle("a", "r", update_interval_s=30, grace_s=2)

    class Pipe:  # what `resume` asks of a camera's pipeline
        def carry_over(self, docs, now, confirm_s):
            for d in docs:
                lc.adopt(d["incident_id"], d["zone"], d["subject"], d["opened_at"],
                         Condition("r", d["zone"], d["opened_at"], d["score"], None, subject=d["subject"]),
                         now, 30.0, confirm_s, "restart")
            return []

    counts = await resume(read_open(store.path), cameras={"a": Pipe()}, sensors=None, merge=None,
                          gate=SuppressionGate(), publish=None, confirm_s=5)
    assert counts == {"carried": 2, "cleared": 0} and len(lc.active) == 2
    now = time.time()
    changes = lc.step([Condition("r", "z", now, 0.9, None, subject=7), Condition("r", "z", now, 0.9, None, subject=8)],
                      now + 1)
    assert sorted((c.status, c.incident_id) for c in changes) == [("updated", "bag-1"), ("updated", "bag-2")]
    store.close()


async def test_an_incident_of_a_rule_no_longer_configured_is_cleared_with_the_reason(tmp_path):
    _, opened, _ = sensor_opened("dust-1", "dust", "pm25", "environment.construction-dust", "s3")
    store = await stored(tmp_path, [opened])
    engine = SensorEngine({"dust-1": [rule(id="pm10", type="threshold", value="pm10", above=150, clear_at=120)]},
                          started_at=time.time())
    published = []

    async def publish(ev):
        published.append(ev)

    counts = await resume(read_open(store.path), cameras={}, sensors=SimpleNamespace(engine=engine), merge=None,
                          gate=SuppressionGate(), publish=publish, confirm_s=5)
    assert counts == {"carried": 0, "cleared": 1}
    [gone] = published
    assert (gone.incident_id, gone.status, gone.source.sensor_id) == ("s3", "cleared", "dust-1")
    assert gone.clear_reason == "restart: rule 'pm25' is no longer configured on sensor dust-1"
    assert [(s.incident_id, s.active) for s in gone.sources] == [("s3", False)]
    store.close()
