"""One camera's path from a decoded frame to events: the code replay and live share.

detect (blocking, run in the inference thread live) -> analyse (tracker, rules, lifecycle)
-> events (evidence snapshot, grid, category). Only the clock differs: replay passes media time,
live passes wall time.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from bridge.events import CameraContext, EventFactory
from bridge.homography import GroundProjector
from bridge.event import Event
from bridge.evidence import EvidenceStore
from detectors.analyzer import CameraAnalyzer
from detectors.annotate import annotated_jpeg
from detectors.detections import Detections
from detectors.lifecycle import IncidentChange
from detectors.yolo import YoloDetector
from ingest.frame import Frame
from xueliang.config import CameraConfig, ServiceConfig


class CameraPipeline:
    def __init__(self, cfg: ServiceConfig, camera: CameraConfig, detector: YoloDetector,
                 factory: EventFactory, evidence: EvidenceStore | None) -> None:
        self.camera = camera
        self.detector = detector
        self.factory = factory
        self.evidence = evidence
        self.analyzer = CameraAnalyzer(camera.id, camera.zones, camera.rules, cfg.tracker, camera.analysis_fps)
        self._class_ids = detector.class_ids(self.analyzer.classes) if camera.rules else []
        self.context = CameraContext(
            camera_id=camera.id,
            location=camera.location,
            categories={r.id: r.category for r in camera.rules},
            model=cfg.model.name,
            config_hash=camera.detection_hash(cfg.model, cfg.tracker),
            ground=GroundProjector(camera.ground) if camera.ground else None,
        )
        self._zones = {z.name: z.polygon for z in camera.zones}
        self.frames_analysed = 0

    def detect(self, frame: Frame) -> Detections:
        """Blocking model call; live runs it in the inference thread."""
        return self.detector.detect(frame.image, self._class_ids)

    def analyse(self, detections: Detections, now: float) -> list[IncidentChange]:
        self.frames_analysed += 1
        return self.analyzer.process(detections, now)

    def events(self, frame: Frame, changes: list[IncidentChange], occurred_at: datetime,
               media_time_s: float | None = None) -> list[Event]:
        """Blocking (JPEG encode and write): live runs it in a thread when there are changes."""
        out = []
        for change in changes:
            snapshot = None
            if self.evidence is not None:
                jpeg = annotated_jpeg(frame.image, change.condition.bbox, self._zones.get(change.zone or ""),
                                      f"{change.rule_id} {change.condition.score:.2f}")
                snapshot = self.evidence.put_jpeg(jpeg)
            out.append(self.factory.make(change, self.context, occurred_at, snapshot, media_time_s))
        return out


def replay_time(start: datetime, media_time_s: float) -> datetime:
    return start + timedelta(seconds=media_time_s)
