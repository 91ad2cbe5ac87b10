"""One camera's analysis: detections -> tracks -> rule conditions -> incident changes.

Everything here is synchronous and clock-free: the caller passes the time, media time in replay
and wall time live, so replay and live run exactly this code. `local` is the same instant as a
timezone-aware datetime, for rules with active hours.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime

import numpy as np

from detectors.detector_config import MaskConfig, ObjectFilterConfig, RuleConfig, SceneModelConfig, TrackerConfig, ZoneConfig
from detectors.detections import Detections
from detectors.filters import DetectionFilter
from detectors.lifecycle import IncidentChange, Lifecycle
from detectors.rules.condition import Condition
from detectors.rules.crowd import crowd
from detectors.rules.dumping import dumping
from detectors.rules.dwell import dwell
from detectors.rules.identity import SubjectMerger
from detectors.rules.occupation import occupation
from detectors.rules.parking import parking
from detectors.rules.pile import pile
from detectors.rules.scene import Scene
from detectors.scene_model import SceneModel, SceneObservation
from detectors.schedule import is_active
from detectors.tracking import Track, Tracker
from detectors.zones import Zone

RULES = {"dwell": dwell, "parking": parking, "occupation": occupation, "crowd": crowd, "dumping": dumping, "pile": pile}
_CLASS_FIELDS = ("classes", "stall_classes", "person_classes", "object_classes", "carrier_classes", "self_classes")
_OBJECT_RULES = ("dumping", "pile")  # rules whose objects may come from several sources: one subject each


class CameraAnalyzer:
    def __init__(
        self,
        camera_id: str,
        zones: list[ZoneConfig],
        rules: list[RuleConfig],
        tracker: TrackerConfig,
        analysis_fps: float,
        objects: dict[str, ObjectFilterConfig] | None = None,
        masks: MaskConfig | None = None,
        scene: SceneModelConfig | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.zones = {z.name: Zone(z) for z in zones}
        self.rules = rules
        self.filter = DetectionFilter(objects or {}, masks or MaskConfig())
        self.tracker = Tracker(tracker, analysis_fps)
        self.lifecycles = {
            r.id: Lifecycle(camera_id, r.id, update_interval_s=r.update_interval_s, grace_s=r.grace_s,
                            cooldown_s=r.cooldown_s, min_absent_steps=r.min_absent_frames)
            for r in rules
        }
        # Rules look back at most this far (crowd and occupation windows, dwell lengths).
        self._frame_times: deque[float] = deque()
        self._history_s = tracker.history_s
        self._start: float | None = None
        self.tracks: list[Track] = []
        # Each rule's conditions on the latest frame: a verify request asks whether they still hold.
        self.conditions: dict[str, list[Condition]] = {}
        self._ids: list[int] | None = None
        # The scene model (objects of any kind), when a rule reads it; fed the frame image.
        self.scene_model = SceneModel(scene) if scene is not None else None
        self.observation: SceneObservation | None = None
        self._mergers = {r.id: SubjectMerger(r.grace_s + 30.0) for r in rules if r.type in _OBJECT_RULES}

    @property
    def classes(self) -> list[str]:
        """Every class some rule looks at: the detector keeps only these."""
        return sorted({c for r in self.rules for f in _CLASS_FIELDS for c in getattr(r, f, [])})

    def _class_ids(self, names: dict[int, str]) -> list[int]:
        if self._ids is None:
            wanted = set(self.classes)
            self._ids = [i for i, n in names.items() if n in wanted]
        return self._ids

    def process(self, detections: Detections, now: float, local: datetime | None = None,
                image: np.ndarray | None = None) -> list[IncidentChange]:
        """One analysed frame: its detections at `now`. `image`, the frame the detections come from,
        feeds the scene model, and lets stationary objects keep their identity through occlusions
        (their appearance tells them from a newcomer)."""
        if self._start is None:
            self._start = now
        self._frame_times.append(now)
        while self._frame_times and self._frame_times[0] < now - self._history_s:
            self._frame_times.popleft()
        # Only the classes some rule uses are tracked, whatever the detector was asked for.
        wanted = np.isin(detections.cls, self._class_ids(detections.names))
        self.tracks = self.tracker.update(self.filter(detections[wanted]), now, image)
        occluded = self.tracker.occluded()
        if self.scene_model is not None and image is not None:
            self.observation = self.scene_model.update(image, now)
        regions = self.observation.static_regions if self.observation is not None else ()
        scene = Scene(now, self._start, self.tracker.recent(), self._frame_times, regions)
        changes: list[IncidentChange] = []
        for rule in self.rules:
            active = local is None or is_active(rule.active_hours, local)
            conditions = RULES[rule.type](rule, self.zones[rule.zone], scene) if active else []
            if rule.id in self._mergers:
                conditions = self._mergers[rule.id](conditions, now)
            self.conditions[rule.id] = conditions
            changes.extend(self.lifecycles[rule.id].step(conditions, now, occluded))
        return changes
