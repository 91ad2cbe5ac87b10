"""One camera's analysis: detections -> tracks -> rule conditions -> incident changes.

Everything here is synchronous and clock-free: the caller passes the time, media time in replay
and wall time live, so replay and live run exactly this code.
"""
from __future__ import annotations

from detectors.config import RuleConfig, TrackerConfig, ZoneConfig
from detectors.detections import Detections
from detectors.lifecycle import IncidentChange, Lifecycle
from detectors.rules.dwell import dwell
from detectors.tracking import Track, Tracker
from detectors.zones import Zone


class CameraAnalyzer:
    def __init__(
        self,
        camera_id: str,
        zones: list[ZoneConfig],
        rules: list[RuleConfig],
        tracker: TrackerConfig,
        analysis_fps: float,
    ) -> None:
        self.camera_id = camera_id
        self.zones = {z.name: Zone(z) for z in zones}
        self.rules = rules
        self.tracker = Tracker(tracker, analysis_fps)
        self.lifecycles = {
            r.id: Lifecycle(camera_id, r.id, update_interval_s=r.update_interval_s, grace_s=r.grace_s) for r in rules
        }
        self.tracks: list[Track] = []

    @property
    def classes(self) -> list[str]:
        """Every class some rule looks at: the detector keeps only these."""
        return sorted({c for r in self.rules for c in r.classes})

    def process(self, detections: Detections, now: float) -> list[IncidentChange]:
        self.tracks = self.tracker.update(detections, now)
        changes: list[IncidentChange] = []
        for rule in self.rules:
            conditions = dwell(rule, self.zones[rule.zone], self.tracks, now)
            changes.extend(self.lifecycles[rule.id].step(conditions, now))
        return changes
