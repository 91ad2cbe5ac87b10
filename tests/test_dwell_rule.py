"""The dwell rule and the incident lifecycle on synthetic tracks: no video, no model."""
from __future__ import annotations

from collections import deque

from detectors.detector_config import DwellRuleConfig, ZoneConfig
from detectors.lifecycle import Lifecycle
from detectors.rules.dwell import dwell, time_entered
from detectors.rules.scene import Scene
from detectors.tracking import Track, TrackPoint
from detectors.zones import Zone

ZONE = Zone(ZoneConfig(name="z", polygon=[(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)]))
IN, OUT = (0.5, 0.5), (0.9, 0.9)


def rule(**kw) -> DwellRuleConfig:
    base = dict(id="r", type="dwell", category="market.road-occupation", zone="z", classes=["person"],
                min_dwell_s=6, grace_s=3, exit_tolerance_s=1.0, update_interval_s=10)
    return DwellRuleConfig(**(base | kw))


def scene(tracks, now: float) -> Scene:
    return Scene(now, 0.0, tracks, ())


def track(positions: list[tuple[float, tuple[float, float]]], label="person", score=0.9, tid=1) -> Track:
    """A track whose bottom-centre is at `pos` at each time."""
    pts = deque(TrackPoint(t, (x - 0.05, y - 0.2, x + 0.05, y), score) for t, (x, y) in positions)
    return Track(tid, label, pts)


def steady(t0: float, t1: float, pos, step=0.5):
    n = int(round((t1 - t0) / step))
    return [(t0 + i * step, pos) for i in range(n + 1)]


def test_time_entered_tolerates_short_excursions():
    tr = track(steady(0, 3, IN) + [(3.5, OUT)] + steady(4, 10, IN))
    assert time_entered(tr, ZONE, exit_tolerance_s=1.0, now=10) == 0
    assert time_entered(tr, ZONE, exit_tolerance_s=0.0, now=10) == 4


def test_time_entered_none_once_gone_longer_than_tolerance():
    tr = track(steady(0, 5, IN) + steady(5.5, 8, OUT))
    assert time_entered(tr, ZONE, 1.0, now=8) is None
    assert time_entered(track(steady(0, 5, IN)), ZONE, 1.0, now=7) is None  # not seen for 2 s


def test_dwell_holds_only_after_min_dwell():
    tr = track(steady(0, 10, IN))
    assert dwell(rule(), ZONE, scene([tr], 5.5)) == []
    [cond] = dwell(rule(), ZONE, scene([tr], 6.0))
    assert cond.since == 0 and cond.zone == "z" and cond.track_ids == (1,)


def test_dwell_ignores_other_classes_low_scores_and_outside_tracks():
    assert dwell(rule(), ZONE, scene([track(steady(0, 10, IN), label="chair")], 10)) == []
    assert dwell(rule(), ZONE, scene([track(steady(0, 10, IN), score=0.2)], 10)) == []
    assert dwell(rule(), ZONE, scene([track(steady(0, 10, OUT))], 10)) == []


def test_dwell_reports_longest_stay_and_all_qualifying_tracks():
    a = track(steady(2, 12, IN), tid=1)
    b = track(steady(0, 12, IN), tid=2)
    [cond] = dwell(rule(), ZONE, scene([a, b], 12))
    assert cond.since == 0 and cond.track_ids == (1, 2)


def run_lifecycle(holds: dict[float, bool], **kw):
    lc = Lifecycle("cam", "r", update_interval_s=kw.get("update", 10), grace_s=kw.get("grace", 3))
    tr = track(steady(0, 100, IN))
    out = []
    for t in sorted(holds):
        conds = dwell(rule(min_dwell_s=0.1), ZONE, scene([tr], t)) if holds[t] else []
        out += [(c.status, t) for c in lc.step(conds, t)]
    return out


def test_lifecycle_opens_once_updates_at_most_every_interval_and_clears_after_grace():
    timeline = {t / 2: (1 <= t / 2 < 26) for t in range(0, 80)}
    changes = run_lifecycle(timeline)
    assert changes[0] == ("opened", 1.0)
    assert [c for c in changes if c[0] == "updated"] == [("updated", 11.0), ("updated", 21.0)]
    assert changes[-1] == ("cleared", 28.5)  # last true at 25.5, grace 3 s
    assert len(changes) == 4


def test_lifecycle_flicker_shorter_than_grace_keeps_one_incident():
    timeline = {t / 2: not (10 <= t / 2 < 12) for t in range(2, 60)}
    changes = run_lifecycle(timeline, update=1000)
    assert [s for s, _ in changes] == ["opened"]


def test_lifecycle_incident_ids_are_stable_and_distinct():
    lc = Lifecycle("cam", "r", update_interval_s=1, grace_s=1)
    tr = track(steady(0, 100, IN))
    ids = []
    for t in [1, 2, 3, 6, 7, 8]:  # absent at 6, more than the 1 s grace after 3
        conds = dwell(rule(min_dwell_s=0.1), ZONE, scene([tr], t)) if t != 6 else []
        ids += [(c.status, c.incident_id) for c in lc.step(conds, t)]
    first = {i for s, i in ids[:3]}
    assert len(first) == 1 and ids[0][0] == "opened"
    assert ids[3][0] == "cleared" and ids[3][1] in first
    assert ids[4][0] == "opened" and ids[4][1] not in first


def test_lifecycle_keeps_an_occluded_subject_open_and_clears_when_the_hold_ends():
    lc = Lifecycle("cam", "r", update_interval_s=1000, grace_s=3)
    tr = track(steady(0, 10, IN), tid=7)
    out = []
    for t in [x / 2 for x in range(0, 121)]:
        conds = dwell(rule(min_dwell_s=1), ZONE, scene([tr], t)) if t <= 10 else []
        occluded = {7} if 10 < t < 45 else set()  # out of sight, held by the tracker, until 45 s
        out += [(c.status, c.at) for c in lc.step(conds, t, occluded)]
    assert out == [("opened", 1.0), ("cleared", 45.0)]


def test_lifecycle_a_long_gap_between_frames_is_not_an_absence():
    tr = track(steady(0, 30, IN))
    times = [x / 2 for x in range(0, 21)] + [14.0, 14.5, 15.0, 15.5]  # no frame from 10 s to 14 s (load)
    for min_steps, expected in [(3, ["opened"]), (1, ["opened", "cleared", "opened"])]:
        lc = Lifecycle("cam", "r", update_interval_s=1000, grace_s=3, min_absent_steps=min_steps)
        out = []
        for t in times:
            missed = t == 14.0  # the first frame after the gap misses her
            conds = [] if missed else dwell(rule(min_dwell_s=1), ZONE, scene([tr], t))
            out += [c.status for c in lc.step(conds, t)]
        assert out == expected, (min_steps, out)


def test_time_entered_one_frame_over_the_edge_is_not_an_exit_when_frames_are_seconds_apart():
    # Frames 1.2 s apart under load; one box's bottom jittered out of the zone: still one stay.
    # Two frames out in a row, over the tolerance, are an exit.
    tr = track([(0.0, IN), (1.2, IN), (2.4, OUT), (3.6, IN), (4.8, IN)])
    assert time_entered(tr, ZONE, exit_tolerance_s=1.0, now=4.8) == 0.0
    tr = track([(0.0, IN), (1.2, IN), (2.4, OUT), (3.6, OUT), (4.8, IN)])
    assert time_entered(tr, ZONE, exit_tolerance_s=1.0, now=4.8) == 4.8
