"""One camera's analysis: a decoded frame in, incident changes out. Replay and live share it.

The camera's loop calls `on_frame` (live, with the cross-camera batcher's `detect`) or
`on_frame_sync` (replay, with the models called in turn): the change gate picks what each model
runs on, the results are combined into each model's detections on the whole frame, the tracker,
rules and lifecycles turn them into `opened`/`updated`/`cleared` changes, and the camera-health
checks (`detectors/camera_faults.py`) add the camera's faults. Only the clock differs: replay
passes media time, live passes wall time. Second-stage readers (plates, states) are planned here
and run by `read` (blocking, on the frame's pixels). Incidents carried over from a restart or
from the camera's previous owner in a cluster go on through `carry_over` and `adopt`.

The camera config is taken duck-typed (the composition root owns its model): `id`, `zones`,
`rules`, `classes`, `objects`, `masks`, `scene`, `uses_scene`, `analysis_fps`, `timezone`, `quality`, `gate`.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from detectors.analyzer import CameraAnalyzer
from detectors.batching import DetectRequest
from detectors.camera_faults import CameraHealth, HealthConfig
from detectors.detector_config import FULL_FRAME_ZONE, MAIN_MODEL_PREFIX, CustomModelConfig, TrackerConfig, class_rules
from detectors.detections import Detections
from detectors.lifecycle import IncidentChange, Lifecycle
from detectors.readers import Reading
from detectors.readers.stage import ReaderStage, ReaderUse
from detectors.region_inference import GatedInference
from detectors.rules.condition import Condition
from detectors.yolo import YoloDetector
from ingest.frame import Frame

# camera id, gate decision, model seconds saved, gate seconds: since the last call (the metrics)
GateCounter = Callable[[str, str, float, float], None]


@dataclass
class Stage:
    """One model and what watches its detections: the main COCO model, or a custom model."""

    detector: YoloDetector
    class_ids: list[int]
    analyzer: CameraAnalyzer


class CameraStage:
    def __init__(self, camera: Any, detector: YoloDetector | None, tracker: TrackerConfig, health: HealthConfig,
                 custom: list[tuple[CustomModelConfig, YoloDetector]] = (), readers: list[ReaderUse] = (),
                 describe: Callable[[Reading], dict] | None = None, count_gate: GateCounter | None = None) -> None:
        """`describe`: what a log line may say about a reading (plate privacy); `count_gate`: where
        the change gate's decisions are counted (the metrics)."""
        self.camera = camera
        self.tz = ZoneInfo(camera.timezone)
        self.stages: list[Stage] = []
        # The main model's stage: the camera's rules, and its classes mapped to categories.
        main_rules = [*camera.rules, *class_rules(MAIN_MODEL_PREFIX, camera.classes)]
        if main_rules:
            zones = [*camera.zones, FULL_FRAME_ZONE] if camera.classes else camera.zones
            main = CameraAnalyzer(camera.id, zones, main_rules, tracker, camera.analysis_fps,
                                  camera.objects, camera.masks, camera.scene if camera.uses_scene else None)
            try:
                ids = detector.class_ids(main.classes)
            except ValueError as exc:
                raise ValueError(f"cameras[{camera.id}]: {exc}") from None
            self.stages.append(Stage(detector, ids, main))
        self.categories = {r.id: r.category for r in main_rules}  # rule id -> category code
        self.health = CameraHealth(camera.id, health, camera.quality)
        self.categories.update({rule: health.category for rule in self.health.rule_ids})
        for j, (mcfg, mdet) in enumerate(custom):
            rules = mcfg.rules()
            try:
                ids = mdet.class_ids(list(mcfg.classes))
            except ValueError as exc:
                raise ValueError(f"cameras[{camera.id}].models[{j}].classes: {exc}") from None
            analyzer = CameraAnalyzer(camera.id, [*camera.zones, FULL_FRAME_ZONE], rules, tracker,
                                      camera.analysis_fps, masks=camera.masks)
            self.stages.append(Stage(mdet, ids, analyzer))
            self.categories.update({r.id: r.category for r in rules})
        self.rule_models = {r.id: s.detector.model_name for s in self.stages for r in s.analyzer.rules}
        self.model_sha256 = {s.detector.model_name: s.detector.sha256 for s in self.stages}
        # How long each rule takes to see its condition from scratch: a new owner waits that long.
        self._durations = {r.id: rule_duration_s(r) for s in self.stages for r in s.analyzer.rules}
        self._durations.update(self.health.durations)
        self.frames_analysed = 0
        self._carried: tuple[list[dict], float] | None = None  # restart: adopted with the first analysed frame
        # Second-stage readers (plates, states) on the crops of tracks; see detectors/readers/stage.py.
        self.readers = (ReaderStage(camera.id, list(readers), describe) if describe else ReaderStage(camera.id, list(readers))) \
            if readers else None
        self._rule_stage = {r.id: i for i, s in enumerate(self.stages) for r in s.analyzer.rules}
        # Change gate: the models run only where the picture changed (detectors/region_inference.py).
        self.gated = GatedInference(camera.gate, [s.detector.imgsz for s in self.stages],
                                    all(s.detector.resizable for s in self.stages)) \
            if camera.gate.enabled and self.stages else None
        self._count_gate = count_gate
        self._gate_counted = (0.0, 0.0)  # model seconds saved, gate seconds: already counted

    # -- the entry point: one frame to incident changes ----------------------------------------------
    async def on_frame(self, frame: Frame, detect: Callable[[list[DetectRequest]], Awaitable[list[Detections]]],
                       now: float, at: datetime) -> list[IncidentChange]:
        """Live: the model requests go through `detect` (batched across cameras); no await after it,
        so a cancelled loop never stops between a lifecycle change and its events."""
        return self.analyse(frame, self.combine(await detect(self.requests(frame))), now, at)

    def on_frame_sync(self, frame: Frame, now: float, at: datetime) -> list[IncidentChange]:
        """Replay: the same, with each model called in turn (blocking)."""
        return self.analyse(frame, self.detect(frame), now, at)

    def on_status(self, down_since: float | None, now: float) -> list[IncidentChange]:
        """The camera-offline check, polled with the decoder's state (a dead camera sends no frames)."""
        return self.health.on_status(down_since, now)

    def detect(self, frame: Frame) -> list[Detections]:
        """Blocking model calls, one per stage (replay); live batches `requests` across cameras."""
        return self.combine([r.detector.detect(r.image, r.classes, r.size) for r in self.requests(frame)])

    def requests(self, frame: Frame) -> list[DetectRequest]:
        """What `detect` runs, as requests for the cross-camera batcher; their results go through
        `combine`. With the change gate, the frame, its changed region, or nothing."""
        if self.gated is None:
            return [DetectRequest(s.detector, frame.image, s.class_ids) for s in self.stages]
        runs = self.gated.images(frame.image, frame.media_time_s)
        return [DetectRequest(s.detector, im, s.class_ids, size) for s, run in zip(self.stages, runs) for im, size in run]

    def combine(self, results: list[Detections]) -> list[Detections]:
        """The results of `requests` as each stage's detections on the whole frame."""
        if self.gated is None:
            return results
        g = self.gated.gate.stats
        cost = sum(s.detector.inference_seconds / s.detector.frames for s in self.stages if s.detector.frames)
        out = self.gated.combine(results, cost)
        saved, spent = self._gate_counted
        if self._count_gate is not None:
            self._count_gate(self.camera.id, self.gated.gate.last_plan.kind,
                             g.model_seconds_saved - saved, g.gate_seconds - spent)
        self._gate_counted = (g.model_seconds_saved, g.gate_seconds)
        return out

    def analyse(self, frame: Frame, detections: list[Detections], now: float, at: datetime) -> list[IncidentChange]:
        """`now` is the rules' clock (media or wall seconds); `at` the same instant as a datetime."""
        self.frames_analysed += 1
        if self._carried is not None:
            carried, confirm_s = self._carried
            self._carried = None
            self.adopt(carried, now, confirm_s, "restart")
        local = at.astimezone(self.tz)
        changes = []
        for i, (s, d) in enumerate(zip(self.stages, detections)):
            found = s.analyzer.process(d, now, local, frame.image)
            if self.readers is not None:  # which tracks to read: no pixels here, the reads run in `read`
                self.readers.plan(i, s.analyzer.tracks, now, found)
            changes += found
        return changes + self.health.on_frame(frame.image, now)

    # -- second-stage readers ------------------------------------------------------------------------
    @property
    def reads_pending(self) -> bool:
        """Tracks are due for a second-stage read: live then builds events (in a thread) on this frame."""
        return self.readers is not None and self.readers.pending

    def read(self, image: np.ndarray) -> None:
        """Blocking: run the reads `analyse` planned, on this frame's pixels."""
        if self.readers is not None and self.readers.pending:
            self.readers.run(image)

    def readings(self, change: IncidentChange) -> list[Reading]:
        """What the camera's readers read on the change's subject (plate, states); [] without readers."""
        i = self._rule_stage.get(change.rule_id)
        return self.readers.readings(i, change) if self.readers is not None and i is not None else []

    # -- what the rules see now ----------------------------------------------------------------------
    @property
    def scene_model(self):
        """The camera's scene model (reference scene, static regions), if a rule uses one."""
        return self.stages[0].analyzer.scene_model if self.stages else None

    def has_rule(self, rule_id: str) -> bool:
        """A detection rule (not a health check) of this camera."""
        return any(rule_id in s.analyzer.lifecycles for s in self.stages)

    def current(self, rule_id: str, zone: str | None) -> list[Condition]:
        """The rule's conditions in `zone` on the latest analysed frame."""
        for s in self.stages:
            if rule_id in s.analyzer.conditions:
                return [c for c in s.analyzer.conditions[rule_id] if zone is None or c.zone == zone]
        return []

    # -- open incidents: handover and restart --------------------------------------------------------
    def lifecycles(self) -> dict[str, Lifecycle]:
        """Every incident lifecycle of this camera, by rule id (detection rules and health checks)."""
        out = {rid: lc for s in self.stages for rid, lc in s.analyzer.lifecycles.items()}
        return out | self.health.lifecycles

    def open_incidents(self) -> list[dict]:
        """The incidents open now, as the camera's next owner needs them (cluster handover)."""
        return [{"rule": rid, "zone": zone, "subject": subject, "incident_id": act.incident_id,
                 "opened_at": act.opened_at, "score": float(act.best.score),
                 "bbox": [float(v) for v in act.best.bbox] if act.best.bbox else None}
                for rid, lc in self.lifecycles().items() for (zone, subject), act in lc.active.items()]

    def carry_over(self, incidents: list[dict], now: float, confirm_s: float) -> list[dict]:
        """A restart: the incidents this camera had open before it (`bridge.resume`). Health
        checks carry on at once (they run on the wall clock, frames or not); detection rules with
        the first analysed frame, so the time a camera takes to reconnect does not eat into the
        confirmation window. Returns the incidents whose rule is no longer configured."""
        rules = self.lifecycles()
        gone = [i for i in incidents if i["rule"] not in rules]
        health = [i for i in incidents if i["rule"] in self.health.rule_ids]
        rest = [i for i in incidents if i["rule"] in rules and i["rule"] not in self.health.rule_ids]
        self.adopt(health, now, confirm_s, "restart")
        if rest:
            self._carried = (rest, confirm_s)
        return gone

    def adopt(self, incidents: list[dict], now: float, confirm_s: float, carried: str = "handover") -> int:
        """Carry on a previous owner's open incidents: a subject in view within `confirm_s` of now
        continues one; each waits that plus its rule's own duration to be seen again. Returns how
        many were taken (rules gone from the config are not)."""
        lifecycles, taken = self.lifecycles(), 0
        for inc in incidents:
            lc = lifecycles.get(inc["rule"])
            if lc is None:
                continue
            bbox = tuple(float(v) for v in inc["bbox"]) if inc.get("bbox") else None
            cond = Condition(inc["rule"], inc["zone"], float(inc["opened_at"]), float(inc.get("score", 1.0)), bbox,
                             subject=inc["subject"])
            lc.adopt(inc["incident_id"], inc["zone"], inc["subject"], inc["opened_at"], cond, now,
                     confirm_s + self._durations.get(inc["rule"], 0.0) + lc.grace_s, confirm_s, carried)
            taken += 1
        return taken


def rule_duration_s(rule) -> float:
    """Seconds a rule needs to report a condition it has just started to watch."""
    if rule.type == "dumping":
        return rule.min_left_s + rule.carrier_window_s
    return next((getattr(rule, f) for f in ("min_dwell_s", "min_stationary_s", "min_duration_s", "min_static_s")
                 if hasattr(rule, f)), 0.0)
