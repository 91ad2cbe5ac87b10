"""One camera's path from a decoded frame to events: the code replay and live share.

detect (blocking, run in the inference thread live) -> analyse (tracker, rules, lifecycle)
-> events (evidence snapshot, grid, category). Only the clock differs: replay passes media time,
live passes wall time.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import cv2

from bridge.events.builder import CameraContext, EventFactory
from bridge.location.homography import GroundProjector
from bridge.events.model import Event
from bridge.events.evidence_store import EvidenceStore
from bridge.events.reader_fields import ReadingsToEvents
from bridge.feedback.verify import PendingVerification, verification_event
from detectors.analyzer import CameraAnalyzer
from detectors.batching import DetectRequest
from detectors.detector_config import FULL_FRAME_ZONE, MAIN_MODEL_PREFIX, CustomModelConfig, class_rules
from detectors.annotate import annotated_jpeg, crop_jpeg
from detectors.detections import Detections
from detectors.lifecycle import IncidentChange, Lifecycle
from detectors.readers.stage import ReaderStage, ReaderUse
from detectors.region_inference import GatedInference
from detectors.rules.condition import Condition
from detectors.yolo import YoloDetector
from ingest.clips import PacketRing
from ingest.frame import Frame
from xueliang.config import CameraConfig, ServiceConfig
from xueliang.health import CameraHealth
from detectors.detector_metrics import count_gate


@dataclass
class Stage:
    """One model and what watches its detections: the main COCO model, or a custom model."""

    detector: YoloDetector
    class_ids: list[int]
    analyzer: CameraAnalyzer


class CameraPipeline:
    def __init__(self, cfg: ServiceConfig, camera: CameraConfig, detector: YoloDetector,
                 factory: EventFactory, evidence: EvidenceStore | None,
                 custom: list[tuple[CustomModelConfig, YoloDetector]] = (), readers: list[ReaderUse] = ()) -> None:
        self.camera = camera
        self.factory = factory
        self.evidence = evidence
        self.tz = ZoneInfo(camera.timezone)
        self.stages: list[Stage] = []
        # The main model's stage: the camera's rules, and its classes mapped to categories.
        main_rules = [*camera.rules, *class_rules(MAIN_MODEL_PREFIX, camera.classes)]
        if main_rules:
            zones = [*camera.zones, FULL_FRAME_ZONE] if camera.classes else camera.zones
            main = CameraAnalyzer(camera.id, zones, main_rules, cfg.tracker, camera.analysis_fps,
                                  camera.objects, camera.masks, camera.scene if camera.uses_scene else None)
            try:
                ids = detector.class_ids(main.classes)
            except ValueError as exc:
                raise ValueError(f"cameras[{camera.id}]: {exc}") from None
            self.stages.append(Stage(detector, ids, main))
        categories = {r.id: r.category for r in main_rules}
        self.health = CameraHealth(camera.id, cfg.health, camera.quality)
        categories.update({rule: cfg.health.category for rule in self.health.rule_ids})
        for j, (mcfg, mdet) in enumerate(custom):
            rules = mcfg.rules()
            try:
                ids = mdet.class_ids(list(mcfg.classes))
            except ValueError as exc:
                raise ValueError(f"cameras[{camera.id}].models[{j}].classes: {exc}") from None
            analyzer = CameraAnalyzer(camera.id, [*camera.zones, FULL_FRAME_ZONE], rules, cfg.tracker,
                                      camera.analysis_fps, masks=camera.masks)
            self.stages.append(Stage(mdet, ids, analyzer))
            categories.update({r.id: r.category for r in rules})
        self.context = CameraContext(
            camera_id=camera.id,
            location=camera.location,
            categories=categories,
            model=cfg.model.name,
            config_hash=camera.detection_hash(cfg.model, cfg.tracker),
            rule_models={r.id: s.detector.model_name for s in self.stages for r in s.analyzer.rules},
            model_sha256={s.detector.model_name: s.detector.sha256 for s in self.stages},
            ground=GroundProjector(camera.ground) if camera.ground else None,
        )
        # How long each rule takes to see its condition from scratch: a new owner waits that long.
        self._durations = {r.id: rule_duration_s(r) for s in self.stages for r in s.analyzer.rules}
        self._durations.update(self.health.durations)
        self._zones = {z.name: z.polygon for z in [*camera.zones, FULL_FRAME_ZONE]}
        self.frames_analysed = 0
        clip = camera.clip
        # Enough for `before_s` ahead of an opening, `after_s` behind it, and a long GOP.
        # Dumping shows the scene before the object appeared: keep back to there too.
        self._before_rules = {r.id for r in camera.rules if r.type in ("dumping", "pile")}
        # A scene region is reported some seconds after it appeared (it must first stand still).
        lag = 3 * camera.scene.short_tau_s + camera.scene.confirm_s if camera.uses_scene else 0.0
        keep = max([clip.before_s + clip.after_s, *(r.min_left_s + r.carrier_window_s + 5.0 + lag
                                                     for r in camera.rules if r.type == "dumping")])
        self.ring = PacketRing(keep + 10.0, camera.id) if (clip.enabled or self._before_rules) and self.stages else None
        self._clip = clip
        self._awaiting: dict[str, tuple[IncidentChange, float]] = {}  # incident -> (opened, media time)
        self._carried: tuple[list[dict], float] | None = None  # restart: adopted with the first analysed frame
        # Second-stage readers (plates, states) on the crops of tracks; see detectors/readers/stage.py.
        self._to_events = ReadingsToEvents(cfg.privacy, evidence)
        self.readers = ReaderStage(camera.id, list(readers), self._to_events.privacy.log_fields) if readers else None
        self._rule_stage = {r.id: i for i, s in enumerate(self.stages) for r in s.analyzer.rules}
        # Change gate: the models run only where the picture changed (detectors/region_inference.py).
        self.gated = GatedInference(camera.gate, [s.detector.imgsz for s in self.stages],
                                    all(s.detector.resizable for s in self.stages)) \
            if camera.gate.enabled and self.stages else None
        self._gate_counted = (0.0, 0.0)  # model seconds saved, gate seconds: already in the metrics

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
        count_gate(self.camera.id, self.gated.gate.last_plan.kind, g.model_seconds_saved - saved, g.gate_seconds - spent)
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
            if self.readers is not None:  # which tracks to read: no pixels here, the reads run in `events`
                self.readers.plan(i, s.analyzer.tracks, now, found)
            changes += found
        return changes + self.health.on_frame(frame.image, now)

    @property
    def reads_pending(self) -> bool:
        """Tracks are due for a second-stage read: live then runs `events` (in a thread) on this frame."""
        return self.readers is not None and self.readers.pending

    def events(self, frame: Frame | None, changes: list[IncidentChange], occurred_at: datetime,
               media_time_s: float | None = None) -> list[Event]:
        """Blocking (JPEG encode and write): live runs it in a thread when there are changes."""
        out = []
        media_now = frame.media_time_s if frame is not None else None
        if self.readers is not None and self.readers.pending and frame is not None:
            self.readers.run(frame.image)
        for change in changes:
            stored = {}
            readings = self._readings(change)
            if change.status == "cleared" and change.incident_id in self._awaiting:
                # Shorter than the clip's tail: the clip goes with the clear, cut up to now.
                opened, m = self._awaiting.pop(change.incident_id)
                stored |= self._cut(m, media_now)
            if self.evidence is not None and frame is not None:
                bbox = change.condition.bbox
                jpeg = annotated_jpeg(frame.image, bbox, self._zones.get(change.zone or ""),
                                      f"{change.rule_id} {change.condition.score:.2f}")
                stored["snapshot"] = self.evidence.put(jpeg, "jpg")
                if bbox:
                    stored["crop"] = self.evidence.put(crop_jpeg(frame.image, bbox), "jpg")
                if change.status == "opened" and change.rule_id in self._before_rules:
                    stored |= self._before(change, frame)
            stored |= self._to_events.evidence_items(readings)
            out.append(self._to_events.apply(self.factory.make(change, self.context, occurred_at, stored, media_time_s),
                                             readings))
            if change.status == "opened" and self._clip.enabled and self.ring is not None \
                    and media_now is not None and change.rule_id not in self.health.rule_ids:
                self._awaiting[change.incident_id] = (change, media_now)
        # A clip whose tail has been recorded goes out as an update of its incident.
        for iid, (opened, m) in list(self._awaiting.items()):
            if media_now is not None and media_now >= m + self._clip.after_s:
                del self._awaiting[iid]
                stored = self._cut(m, media_now)
                if stored:
                    update = replace(opened, status="updated", at=media_now)
                    out.append(self._to_events.apply(
                        self.factory.make(update, self.context, occurred_at, stored, media_time_s),
                        self._readings(update)))
        return out

    def _readings(self, change: IncidentChange) -> list:
        """What the camera's readers read on the change's subject (plate, states); [] without readers."""
        i = self._rule_stage.get(change.rule_id)
        return self.readers.readings(i, change) if self.readers is not None and i is not None else []

    @property
    def scene_model(self):
        """The camera's scene model (reference scene, static regions), if a rule uses one."""
        return self.stages[0].analyzer.scene_model if self.stages else None

    def _before(self, change: IncidentChange, frame: Frame) -> dict:
        """The scene a second before the object appeared, from the packet ring; when the ring does
        not reach back that far (a pile that has stood for minutes), the scene model's reference."""
        image = None
        if self.ring is not None:
            lag = frame.media_time_s - change.at  # the rules' clock may be wall time: go by the distance
            image = self.ring.frame_at(change.condition.since + lag - 1.0)
        if image is None and self.scene_model is not None and self.scene_model.reference_image() is not None:
            h, w = frame.image.shape[:2]
            image = cv2.resize(self.scene_model.reference_image(), (w, h), interpolation=cv2.INTER_LINEAR)
        if image is None:
            return {}
        jpeg = annotated_jpeg(image, change.condition.bbox, self._zones.get(change.zone or ""), "before")
        return {"before": self.evidence.put(jpeg, "jpg")}

    @property
    def clips_pending(self) -> bool:
        return bool(self._awaiting)

    def _cut(self, opened_at_media: float, until: float | None) -> dict:
        if self.ring is None or self.evidence is None or until is None:
            return {}
        clip = self.ring.cut(opened_at_media - self._clip.before_s, until)
        return {"clip": self.evidence.put(clip.data, clip.ext)} if clip else {}

    def current(self, rule_id: str, zone: str | None) -> list[Condition]:
        """The rule's conditions in `zone` on the latest analysed frame."""
        for s in self.stages:
            if rule_id in s.analyzer.conditions:
                return [c for c in s.analyzer.conditions[rule_id] if zone is None or c.zone == zone]
        return []

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
        """A restart: the incidents this camera had open before it (`xueliang.resume`). Health
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

    def verification(self, frame: Frame, p: PendingVerification, at: datetime) -> Event:
        """Blocking (JPEG): the answer to a verify request from this frame, with a fresh snapshot."""
        if not any(p.rule in s.analyzer.lifecycles for s in self.stages):
            return verification_event(p, at, None, reason=f"camera {self.camera.id} has no rule {p.rule!r} any more")
        found = max(self.current(p.rule, p.zone), key=lambda c: c.score, default=None)
        bbox = found.bbox if found else None
        stored = {}
        if self.evidence is not None:
            label = f"verify {p.rule}: {'present' if found else 'gone'}"
            stored["snapshot"] = self.evidence.put(
                annotated_jpeg(frame.image, bbox, self._zones.get(p.zone or ""), label), "jpg")
            if bbox:
                stored["crop"] = self.evidence.put(crop_jpeg(frame.image, bbox), "jpg")
        return verification_event(p, at, found is not None, evidence=stored, bbox=bbox,
                                  score=found.score if found else None)


def rule_duration_s(rule) -> float:
    """Seconds a rule needs to report a condition it has just started to watch."""
    if rule.type == "dumping":
        return rule.min_left_s + rule.carrier_window_s
    return next((getattr(rule, f) for f in ("min_dwell_s", "min_stationary_s", "min_duration_s", "min_static_s")
                 if hasattr(rule, f)), 0.0)


def replay_time(start: datetime, media_time_s: float) -> datetime:
    return start + timedelta(seconds=media_time_s)
