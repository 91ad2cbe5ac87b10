"""The scene model and the `dumping` / `pile` rules on timelines built from real frames
(tests/scene_composites.py): each asserts the exact incidents. Analysed at 1 frame/s, the
service's usual rate; the clock is the timeline's, so nothing here depends on machine speed."""
from __future__ import annotations

import numpy as np
import pytest

from detectors.detector_config import DumpingRuleConfig, PileRuleConfig, SceneModelConfig
from detectors.scene_model import SceneModel
from tests.scene_composites import Thing, Timeline, bag_patch, car_patch, person_patch, pile_patch, run, still, walk

DUMP = DumpingRuleConfig(id="dump", type="dumping", category="environment.illegal-dumping", zone="ground",
                         min_left_s=20)
PILE = PileRuleConfig(id="pile", type="pile", category="city-appearance.stacked-materials", zone="ground",
                      min_static_s=60)


def bag(at=(0.5, 0.9), appear=27.0, gone=1e9) -> Thing:
    img, mask = bag_patch()
    return Thing(img, 0.12, still(*at, appear, gone), mask=mask)


def dropper(x=0.42, arrive=24.0, leave=28.0) -> Thing:
    """A person who walks in from the left, stands by the spot, and walks out to the right."""
    return Thing(person_patch(), 0.45, walk([(arrive - 16, 0.05, 0.9), (arrive, x, 0.9), (leave, x, 0.9),
                                            (leave + 17, 1.05, 0.9)]), "person")


def summary(changes, rule=None):
    return [(c.status, c.rule_id, c.at) for c in changes if c.status != "updated" and (rule is None or c.rule_id == rule)]


def opened(changes, rule):
    return [c for c in changes if c.status == "opened" and c.rule_id == rule]


def test_dark_untextured_bag_left_at_night_opens_one_incident():
    tl = Timeline([bag(), dropper()], light=lambda t: 0.22, noise=2.0)
    changes, analyzer = run(tl, [DUMP], 110)
    [inc] = opened(changes, "dump")
    assert summary(changes) == [("opened", "dump", inc.at)]
    # Left at 27 s, the person gone from it by about 31 s: alone 20 s from then, reported soon after.
    assert 48.0 <= inc.at <= 70.0
    x1, y1, x2, y2 = inc.condition.bbox
    assert x1 < 0.5 < x2 and y1 < 0.85 < y2 and (x2 - x1) < 0.2  # the bag, not the person
    assert abs(inc.condition.since - 27.0) <= 3.0  # it appeared when the person put it down


def test_the_same_scene_without_the_bag_opens_nothing():
    tl = Timeline([dropper()], light=lambda t: 0.22, noise=2.0)
    changes, analyzer = run(tl, [DUMP, PILE], 110)
    assert summary(changes) == []
    assert analyzer.scene_model.regions == ()


def test_pile_that_grows_over_a_minute_is_one_pile_incident():
    img, mask = pile_patch()
    heap = Thing(img, 0.2, still(0.35, 0.95, 20.0), mask=mask, grow=lambda t: min(1.0, 0.3 + 0.7 * (t - 20) / 60))
    changes, analyzer = run(Timeline([heap]), [DUMP, PILE], 170)
    [inc] = opened(changes, "pile")
    assert summary(changes) == [("opened", "pile", inc.at)]  # nobody brought it: no dumping incident
    assert 80.0 <= inc.at <= 150.0
    assert inc.condition.bbox[0] < 0.35 < inc.condition.bbox[2]
    [region] = analyzer.scene_model.regions
    assert region.area > 0.01


def test_parked_car_that_leaves_is_a_ghost_not_a_dumped_object():
    car = Thing(car_patch(), 0.55, walk([(0, 0.3, 0.95), (40, 0.3, 0.95), (46, -0.2, 0.95)]), "car")
    changes, analyzer = run(Timeline([car, dropper(x=0.6, arrive=50, leave=53)]), [DUMP, PILE], 120)
    assert summary(changes) == []
    assert analyzer.scene_model.regions == ()


def test_bus_in_front_of_a_left_bag_for_20_s_neither_clears_nor_reopens_it_taking_it_away_does():
    # The bag is left at 27 s; a bus (a real vehicle patch) drives in at 70 s, stands over the bag
    # until 85 s and drives off by 90 s; someone takes the bag at 150 s.
    bus = Thing(car_patch(), 0.85, walk([(70, -0.4, 0.99), (75, 0.5, 0.99), (85, 0.5, 0.99), (90, 1.4, 0.99)]), "bus")
    taker = Thing(person_patch(), 0.45, walk([(135, 0.05, 0.9), (148, 0.42, 0.9), (151, 0.42, 0.9),
                                              (166, 1.05, 0.9)]), "person")
    tl = Timeline([bag(gone=150.0), dropper(), bus, taker])
    changes, _ = run(tl, [DUMP], 185)
    [inc] = opened(changes, "dump")
    assert 48.0 <= inc.at <= 70.0
    [cleared] = [c for c in changes if c.status == "cleared"]
    assert cleared.incident_id == inc.incident_id and 150.0 <= cleared.at <= 165.0
    assert summary(changes) == [("opened", "dump", inc.at), ("cleared", "dump", cleared.at)]


def test_a_lamp_switching_on_keeps_the_one_incident_and_opens_none():
    tl = Timeline([bag(), dropper()], light=lambda t: 0.22, lamp_from=75.0, noise=2.0)
    changes, analyzer = run(tl, [DUMP], 150)
    [inc] = opened(changes, "dump")
    assert inc.at < 75.0
    assert summary(changes) == [("opened", "dump", inc.at)]  # not cleared by the light, no second one
    [region] = analyzer.scene_model.regions  # the bag; the pool of light is not an object
    assert region.box[0] < 0.5 < region.box[2]


def test_two_pixel_camera_shake_opens_nothing_and_still_sees_a_left_bag():
    quiet, _ = run(Timeline([dropper()], shake_px=2, seed=3), [DUMP, PILE], 100)
    assert summary(quiet) == []
    changes, _ = run(Timeline([bag(), dropper()], shake_px=2, seed=4), [DUMP], 100)
    [inc] = opened(changes, "dump")
    assert summary(changes) == [("opened", "dump", inc.at)] and 48.0 <= inc.at <= 70.0


def test_scene_model_state_is_small_and_reports_changes():
    model = SceneModel(SceneModelConfig())
    tl = Timeline([dropper()])
    for t in range(0, 30):
        obs = model.update(tl.frame(float(t)), float(t))
    assert model.nbytes < 5 * 2**20
    assert obs.changed_boxes and 0 < obs.changed_fraction < 0.5  # the person walking
    assert model.reference_image().shape[1] == 320 and model.overlay((640, 360)).shape == (360, 640, 3)
    assert np.isfinite(obs.gain) and obs.global_change is False


@pytest.mark.parametrize("rule, scene, field, words", [
    ({"type": "pile", "min_static_s": 60, "min_region_area": 0.5}, {}, "rules[0].min_region_area",
     "not smaller than zone"),
    ({"type": "dumping", "min_left_s": 30, "min_region_area": 0.4, "max_region_area": 0.9}, {},
     "rules[0].min_region_area", "not smaller than zone"),
    ({"type": "dumping", "min_left_s": -5}, {}, "rules[0].min_left_s", "greater than 0"),
    ({"type": "pile", "min_static_s": 60}, {"occlusion_s": -1}, "scene.occlusion_s", "greater than 0"),
    ({"type": "pile", "min_static_s": 60}, {"short_tau_s": 900}, "scene", "shorter than long_tau_s"),
    ({"type": "dumping", "min_left_s": 30, "min_region_area": 0.2, "max_region_area": 0.1}, {}, "rules[0]",
     "below max_region_area"),
])
def test_meaningless_parameters_are_config_errors_naming_the_field(tmp_path, rule, scene, field, words):
    from tests.test_config import base_config, problems_of

    doc = base_config()
    cam = doc["cameras"][0]  # zone z: a triangle of 0.32 of the frame
    cam["rules"] = [{"id": "r", "category": "city-appearance.stacked-materials", "zone": "z", **rule}]
    if scene:
        cam["scene"] = scene
    lines = "\n".join(problems_of(tmp_path, doc))
    assert f"cameras[0].{field}" in lines and words in lines, lines


def test_tuning_bench_shows_the_scene_model_of_a_backtest():
    import cv2

    from bridge.http.console.tuning_routes import Clip
    from bridge.http.console.tuning_bench import Job

    job = Job("j1", "lane", Clip(index=0, name="lane.mp4", duration_s=60.0), "abc")
    assert job.view().scene_regions is None  # no rule of the camera uses a scene model
    tl = Timeline([bag(appear=5.0)])
    job.scene = SceneModel(SceneModelConfig())
    for t in range(0, 30):
        job.scene.update(tl.frame(float(t)), float(t))
    [region] = job.view().scene_regions
    assert region.box[0] < 0.5 < region.box[2] and not region.occluded and 3.0 <= region.appeared_s <= 7.0
    image = job.scene.overlay((640, 360))
    ok, buf = cv2.imencode(".jpg", image)
    assert ok and image[..., 2].max() == 255  # the region outlined in red


def test_region_inside_a_parked_vehicle_is_not_left_unless_it_was_there_first():
    from collections import deque

    from detectors.rules.dumping import dumping
    from detectors.rules.scene import Scene
    from detectors.scene_model import SceneRegion
    from detectors.tracking import Track, TrackPoint
    from detectors.zones import Zone
    from tests.scene_composites import GROUND

    def track(tid, label, t0, t1, box):
        return Track(tid, label, deque(TrackPoint(t0 + i, box, 0.9) for i in range(int(t1 - t0) + 1)), first_seen=t0)

    person = track(1, "person", 18, 22, (0.40, 0.5, 0.48, 0.9))  # stands by the spot, then goes
    van = track(2, "truck", 0, 100, (0.30, 0.4, 0.80, 0.95))  # parked there all along
    region = SceneRegion(7, (0.5, 0.7, 0.6, 0.9), 0.02, 20.0, 28.0, 100.0, False, 0.8)
    zone = Zone(GROUND)
    # A change on the parked van (a door, a reflection) with someone beside it: the van's.
    assert dumping(DUMP, zone, Scene(100.0, 0.0, [person, van], [], [region])) == []
    # The same bag, left before the van parked in front of it, is still left.
    late_van = track(2, "truck", 50, 100, (0.30, 0.4, 0.80, 0.95))  # alone 20 s by 42, the van at 50
    [cond] = dumping(DUMP, zone, Scene(100.0, 0.0, [person, late_van], [], [region]))
    assert cond.since == 20.0 and cond.bbox == region.box
