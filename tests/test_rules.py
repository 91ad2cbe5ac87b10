"""Parking, occupation, crowd and dumping rules, the filters, schedules and cooldown, on synthetic
tracks: pure functions of tracks and time, no video."""
from __future__ import annotations

from collections import deque
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from detectors.detector_config import (CrowdRuleConfig, DumpingRuleConfig, MaskConfig, ObjectFilterConfig,
                              OccupationRuleConfig, ParkingRuleConfig, ZoneConfig)
from detectors.detections import Detections
from detectors.filters import DetectionFilter
from detectors.lifecycle import Lifecycle
from detectors.rules.condition import Condition
from detectors.rules.crowd import crowd
from detectors.rules.dumping import dumping
from detectors.rules.occupation import occupation
from detectors.rules.parking import parking
from detectors.rules.scene import Scene
from detectors.schedule import is_active
from detectors.tracking import Track, TrackPoint
from detectors.zones import Zone

ZONE = Zone(ZoneConfig(name="z", polygon=[(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]))
STEP = 0.5
BASE = dict(category="x.y", zone="z", min_score=0.4)


def path(t0, t1, fn, step=STEP):
    """Points every `step` s from t0 to t1; fn(t) -> (cx, bottom, w, h) in normalised units."""
    out, t = [], t0
    while t <= t1 + 1e-9:
        cx, y, w, h = fn(t)
        out.append(TrackPoint(t, (cx - w / 2, y - h, cx + w / 2, y), 0.9))
        t += step
    return out


def mk(tid, label, pts) -> Track:
    return Track(tid, label, deque(pts), first_seen=pts[0].t)


def scene(tracks, now, start=0.0):
    n = int(round((now - start) / STEP))
    return Scene(now, start, tracks, [start + i * STEP for i in range(n + 1)])


def still(x=0.5, y=0.6, w=0.1, h=0.1):
    return lambda t: (x, y, w, h)


# ---------------------------------------------------------------- parking
def test_parking_fires_for_a_stopped_car_only_after_min_stationary():
    rule = ParkingRuleConfig(id="p", type="parking", min_stationary_s=10, **BASE)
    car = mk(1, "car", path(0, 30, still()))
    assert parking(rule, ZONE, scene([car], 9.5)) == []
    [c] = parking(rule, ZONE, scene([car], 10))
    assert c.since == 0 and c.track_ids == (1,)


def test_parking_silent_for_moving_and_crawling_cars_and_non_vehicles():
    rule = ParkingRuleConfig(id="p", type="parking", min_stationary_s=5, **BASE)
    driving = mk(1, "car", path(0, 30, lambda t: (0.2 + 0.02 * t, 0.6, 0.1, 0.1)))  # 0.01 per frame
    person = mk(2, "person", path(0, 30, still()))
    assert parking(rule, ZONE, scene([driving, person], 30)) == []


def test_parking_counts_from_when_the_car_stopped():
    rule = ParkingRuleConfig(id="p", type="parking", min_stationary_s=10, **BASE)
    arrives = mk(1, "car", path(0, 30, lambda t: (0.25 + 0.03 * min(t, 10), 0.6, 0.1, 0.1)))  # stops at t=10
    # Boxes one step before the stop still overlap the parked box by IoU > 0.7: the stop is
    # seen at most a step early.
    assert parking(rule, ZONE, scene([arrives], 18.5)) == []
    assert parking(rule, ZONE, scene([arrives], 20.5))[0].since >= 9.5


# ---------------------------------------------------------------- crowd
def test_crowd_needs_count_for_the_whole_duration():
    rule = CrowdRuleConfig(id="c", type="crowd", min_count=3, min_duration_s=10, **BASE)
    people = [mk(i, "person", path(0, 40, still(0.3 + 0.1 * i))) for i in range(3)]
    late = mk(9, "person", path(20, 40, still(0.7)))
    assert crowd(rule, ZONE, scene(people[:2] + [late], 25)) == []  # 3 people only for 5 s
    assert crowd(rule, ZONE, scene(people[:2] + [late], 30))[0].track_ids == (0, 1, 9)
    assert crowd(rule, ZONE, scene(people, 9)) == []  # not watched for 10 s yet


def test_crowd_tolerates_missed_detections():
    rule = CrowdRuleConfig(id="c", type="crowd", min_count=2, min_duration_s=10, **BASE)
    a = mk(1, "person", path(0, 20, still(0.3)))
    flicker = mk(2, "person", [p for i, p in enumerate(path(0, 20, still(0.6))) if i % 10 != 3])
    assert crowd(rule, ZONE, scene([a, flicker], 20))


# ---------------------------------------------------------------- occupation
def test_occupation_needs_standing_stall_objects_and_people():
    rule = OccupationRuleConfig(id="o", type="occupation", min_duration_s=20, **BASE)
    umbrella = mk(1, "umbrella", path(0, 60, still(0.5, 0.5, 0.2, 0.2)))
    vendor = mk(2, "person", path(0, 60, still(0.6, 0.7)))
    passer = mk(3, "person", path(0, 4, lambda t: (0.2 + 0.15 * t, 0.7, 0.1, 0.3)))
    assert occupation(rule, ZONE, scene([umbrella, vendor], 19)) == []
    [c] = occupation(rule, ZONE, scene([umbrella, vendor], 21))
    assert c.track_ids == (1,)
    assert occupation(rule, ZONE, scene([umbrella, passer], 40)) == []  # nobody tends it


# ---------------------------------------------------------------- dumping
def test_dumping_object_left_after_a_person_passes():
    rule = DumpingRuleConfig(id="d", type="dumping", min_left_s=5, **BASE)
    person = mk(1, "person", path(8, 12, lambda t: (0.3 + 0.05 * (t - 8), 0.7, 0.1, 0.4)))
    bag = mk(2, "suitcase", path(10, 40, still(0.45, 0.7)))
    assert dumping(rule, ZONE, scene([person, bag], 16.5)) == []  # the person was near until 12
    [c] = dumping(rule, ZONE, scene([person, bag], 17.5))
    assert c.subject == 2 and c.since == 10


def test_dumping_ignores_scenery_and_objects_nobody_brought():
    rule = DumpingRuleConfig(id="d", type="dumping", min_left_s=5, **BASE)
    scenery = mk(1, "bottle", path(0, 40, still(0.3)))
    appears_alone = mk(2, "bottle", path(10, 40, still(0.7)))
    assert dumping(rule, ZONE, scene([scenery, appears_alone], 30)) == []


def test_two_dumped_objects_are_two_incidents():
    rule = DumpingRuleConfig(id="d", type="dumping", min_left_s=5, **BASE)
    person = mk(1, "person", path(8, 22, lambda t: (0.3 + 0.02 * (t - 8), 0.7, 0.1, 0.4)))
    a = mk(2, "bottle", path(10, 60, still(0.35, 0.7)))
    b = mk(3, "bottle", path(20, 60, still(0.58, 0.7)))
    lc = Lifecycle("cam", "d", update_interval_s=60, grace_s=3)
    opened = []
    for i in range(0, 100):
        t = i * STEP
        opened += [c.incident_id for c in lc.step(dumping(rule, ZONE, scene([person, a, b], t)), t) if c.status == "opened"]
    assert len(set(opened)) == 2


# ---------------------------------------------------------------- filters, schedules, cooldown
def test_detection_filter_by_class_area_aspect_and_masks():
    names = {0: "person", 1: "car"}
    xyxy = np.array([[10, 10, 20, 90], [100, 100, 110, 110], [50, 50, 90, 90], [5, 150, 15, 195]], np.float32)
    dets = Detections(xyxy, np.array([0.9, 0.9, 0.3, 0.9], np.float32), np.array([0, 0, 1, 0], np.float32), names, (200, 200))
    f = DetectionFilter({"person": ObjectFilterConfig(min_area=0.005), "car": ObjectFilterConfig(min_score=0.5)},
                        MaskConfig(exclude=[[(0, 0.7), (0.2, 0.7), (0.2, 1), (0, 1)]]))
    kept = f(dets)
    # 0: tall person kept; 1: tiny person dropped by area; 2: weak car dropped; 3: person in the mask dropped
    assert kept.xyxy.tolist() == [[10, 10, 20, 90]]


def test_active_hours_in_local_time_across_midnight():
    tz = ZoneInfo("Asia/Shanghai")
    assert is_active(["22:00-06:00"], datetime(2026, 11, 22, 23, 30, tzinfo=tz))
    assert is_active(["22:00-06:00"], datetime(2026, 11, 22, 5, 59, tzinfo=tz))
    assert not is_active(["22:00-06:00"], datetime(2026, 11, 22, 12, 0, tzinfo=tz))
    assert is_active([], datetime(2026, 11, 22, 12, 0, tzinfo=tz))
    assert is_active(["07:00-24:00"], datetime(2026, 11, 22, 23, 59, tzinfo=tz))


def test_cooldown_keeps_a_flicker_from_reopening():
    lc = Lifecycle("cam", "r", update_interval_s=100, grace_s=1, cooldown_s=10)
    cond = Condition("r", "z", 0, 0.9, (0, 0, 1, 1))
    statuses = []
    for t in range(0, 30):
        holds = t < 3 or 6 <= t < 8 or t >= 20  # back at 6 (within cooldown), again at 20 (after it)
        statuses += [(c.status, t) for c in lc.step([cond] if holds else [], t)]
    assert statuses == [("opened", 0), ("cleared", 3), ("opened", 20)]
