"""The change gate (detectors/change_gate.py, detectors/region_inference.py) on quiet scenes.

The quiet scene is a composite: one real frame of the empty parking-lot lane (car-detection.mp4)
repeated at 2 frames/s with fresh sensor noise on each frame (a still street: nothing moves), into
which real patches go (the lane's white car parked, a person from the table clip walking). The
lane clip's car is seen from above and yolov8n calls it "cell phone" in the clip itself, so the
parking rule here counts that class as a vehicle. The
real model runs on whatever the gate asks for, the real tracker, parking rule and lifecycle on the
detections it gives back; times are media seconds.
"""
from __future__ import annotations

import numpy as np
import pytest

from detectors.analyzer import CameraAnalyzer
from detectors.detector_config import ModelConfig, ParkingRuleConfig, TrackerConfig, ZoneConfig
from detectors.gate_config import ChangeGateConfig
from detectors.region_inference import GatedInference
from detectors.yolo import YoloDetector
from tests.helpers import DATA_DIR
from tests.scene_composites import H, W, Thing, car_patch, lane_frames, person_patch, still, walk

FPS = 2.0
CAR = "cell phone"  # what yolov8n calls the lane clip's car (see above)
LANE = ZoneConfig(name="lane", polygon=[[0, 0], [1, 0], [1, 1], [0, 1]])


@pytest.fixture(scope="module")
def detector() -> YoloDetector:
    return YoloDetector(ModelConfig(), DATA_DIR)


def quiet_frame(things: list[Thing], t: float, rng: np.random.Generator, light: float = 1.0) -> np.ndarray:
    img = lane_frames()[0].copy()
    for thing in things:
        thing.paste(img, t)
    f = img.astype(np.float32) * light + rng.normal(0, 2.0, img.shape).astype(np.float32)
    return np.clip(f, 0, 255).astype(np.uint8)


class Camera:
    """What CameraStage does for one model: gate, model on what it asks, merge, analyse."""

    def __init__(self, detector: YoloDetector, rules=(), gate: ChangeGateConfig | None = None) -> None:
        self.detector = detector
        self.analyzer = CameraAnalyzer("quiet", [LANE], list(rules), TrackerConfig(), FPS)
        self.ids = detector.class_ids(self.analyzer.classes or [CAR, "person"])
        self.gated = GatedInference(gate or ChangeGateConfig(), [detector.imgsz], detector.resizable)
        self.model_runs = 0

    def step(self, image: np.ndarray, t: float):
        (run,) = self.gated.images(image, t)
        self.model_runs += len(run)
        dets = self.gated.combine([self.detector.detect(im, self.ids, size) for im, size in run], 0.0)[0]
        return self.analyzer.process(dets, t, None, image), dets


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _found(dets, label: str, box) -> bool:
    px = (box[0] * W, box[1] * H, box[2] * W, box[3] * H)
    return any(lbl == label and _iou(b, px) > 0.4 for lbl, b in zip(dets.labels(), dets.xyxy))


@pytest.mark.timeout(300)
def test_quiet_street_keeps_a_parked_car_incident_with_the_model_almost_never_run(detector):
    car = Thing(car_patch(), 0.62, still(0.5, 0.95, 10.0, 60.0), CAR)
    rule = ParkingRuleConfig(id="no-parking", type="parking", category="city-appearance.illegal-parking",
                             zone="lane", min_stationary_s=5, classes=["car", CAR])
    cam = Camera(detector, [rule])
    rng = np.random.default_rng(1)
    events, frames = [], 0
    for n in range(int(90 * FPS)):
        t = n / FPS
        changes, dets = cam.step(quiet_frame([car], t, rng), t)
        frames += 1
        events += [(c.status, t) for c in changes if c.status != "updated"]
        if 12.0 <= t < 60.0:  # standing: seen on every analysed frame, whether the model ran or not
            assert _found(dets, CAR, car.box(t)), (t, dets.labels(), cam.gated.gate.last_plan)
    stats = cam.gated.gate.stats
    # The model ran on the first frame, the refreshes (every 30 s), where the car came and where it went.
    assert cam.model_runs <= 0.1 * frames, stats.as_dict()
    assert stats.skipped >= 0.85 * frames, stats.as_dict()
    assert [s for s, _ in events] == ["opened", "cleared"], events
    (_, opened), (_, cleared) = events
    assert 15.0 <= opened <= 20.0, events  # 5 s standing still after it stopped at 10 s
    assert 60.0 <= cleared <= 60.0 + rule.grace_s + 5.0, events  # open while it stood, cleared once it left


@pytest.mark.timeout(300)
def test_something_moving_into_a_quiet_scene_is_detected_on_its_first_frame(detector):
    person = Thing(person_patch(), 0.6, walk([(10.0, 0.25, 0.95), (20.0, 0.75, 0.95)]), "person")
    cam = Camera(detector)
    rng = np.random.default_rng(2)
    plans = []
    for n in range(int(24 * FPS)):
        t = n / FPS
        _, dets = cam.step(quiet_frame([person], t, rng), t)
        plans.append(cam.gated.gate.last_plan.kind)
        box = person.box(t)
        if box is not None:  # from the first analysed frame it is in, and on every one while it walks
            assert _found(dets, "person", box), (t, dets.labels(), cam.gated.gate.last_plan)
        elif t > 20.0:  # gone: no detection of it carried on
            assert "person" not in dets.labels(), (t, cam.gated.gate.last_plan)
    assert plans[:20].count("skip") >= 18  # quiet before it came (the first frame is run whole)


@pytest.mark.timeout(300)
def test_a_brightness_jump_does_not_turn_gating_off(detector):
    car = Thing(car_patch(), 0.62, still(0.5, 0.95), CAR)
    cam = Camera(detector)
    rng = np.random.default_rng(3)
    kinds = []
    for n in range(int(40 * FPS)):
        t = n / FPS
        light = 1.0 if t < 10 else 1.5 if t < 25 else 0.55  # lamps on at 10 s, dusk at 25 s
        _, dets = cam.step(quiet_frame([car], t, rng, light), t)
        plan = cam.gated.gate.last_plan
        kinds.append((t, "refresh" if plan.reason == "refresh" else plan.kind))
        assert _found(dets, CAR, car.box(t)), (t, cam.gated.gate.last_plan)
    for jump in (10.0, 25.0):
        # At most a few seconds of model runs after the jump, then the frames are gated again.
        after = [k for t, k in kinds if jump + 3.0 <= t < jump + 10.0]
        assert after and all(k in ("skip", "refresh") for k in after), kinds
    # A global change of light alone is normalised away: gated on (almost) every frame.
    assert sum(k == "skip" for _, k in kinds) >= 0.85 * len(kinds), kinds
    for jump in (10.0, 25.0):  # what still differs (the car's white clipped at 1.5x) is run once or twice
        assert sum(k in ("full", "region") for t, k in kinds if jump <= t < jump + 3.0) <= 2, kinds


def test_tuning_bench_shows_the_changed_parts_and_the_region_run():
    from bridge.http.console.tuning_routes import Clip
    from detectors.change_gate import ChangeGate
    from bridge.http.console.tuning_bench import Job

    job = Job("j1", "lane", Clip(index=0, name="lane.mp4", duration_s=60.0), "abc")
    assert job.view().gate is None  # no gate (off, or nothing analysed yet)
    person = Thing(person_patch(), 0.4, walk([(3.0, 0.3, 0.9), (6.0, 0.4, 0.9)]), "person")
    job.gate = ChangeGate(ChangeGateConfig(), 640, regions=True)
    rng = np.random.default_rng(4)
    decisions = []
    for n in range(10):
        t = n / FPS
        plan = job.gate.plan(quiet_frame([person], t, rng), t)
        job.gate.seen(plan, 0.1)
        decisions.append(plan.kind)
    view = job.view().gate
    assert decisions[0] == "full" and decisions[1:6] == ["skip"] * 5 and "region" in decisions[6:], decisions
    assert view.frames_full == 1 and view.frames_gated >= 5 and view.frames_region >= 1
    image = job.gate.overlay((640, 360))
    assert image.shape == (360, 640, 3)
    if view.decision == "region":  # the region outlined in yellow, the change in red
        assert view.region and view.changed and (image[..., 2] == 255).any()
