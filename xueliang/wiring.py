"""Builds the parts that `run` and `replay` share from a validated config."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bridge.events.builder import EventFactory
from bridge.events.camera_events import CameraEvents
from bridge.events.catalogue import Catalogue
from bridge.events.evidence_store import EvidenceStore, LocalEvidenceStore
from bridge.events.reader_fields import PlatePrivacy
from bridge.location.grid import GridIndex
from bridge.merging.rewrite import MergeStage
from detectors.detector_config import CustomModelConfig
from detectors.readers.engines import build_reader, reader_key
from detectors.readers.stage import ReaderUse
from detectors.yolo import YoloDetector
from xueliang.config import CameraConfig, ServiceConfig
from detectors.detector_metrics import count_gate
from detectors.camera_stage import CameraStage


@dataclass
class Core:
    detector: YoloDetector | None  # None when the config has no cameras (sensors only)
    factory: EventFactory
    evidence: EvidenceStore
    data_dir: Path = Path(".data")
    merge: MergeStage | None = None  # shared by all cameras: incidents merge across them
    _custom: dict = field(default_factory=dict)
    _readers: dict = field(default_factory=dict)

    def custom_detector(self, cfg: CustomModelConfig) -> YoloDetector:
        """One loaded instance per exported model, shared by the cameras that use it."""
        key = (cfg.name, str(cfg.path or cfg.model), cfg.backend, cfg.imgsz, cfg.min_score, cfg.iou)
        if key not in self._custom:
            self._custom[key] = YoloDetector(cfg, self.data_dir)
        return self._custom[key]

    def camera(self, cfg: ServiceConfig, camera_id: str | CameraConfig) -> tuple[CameraStage, CameraEvents]:
        """A camera's analysis stage and the event building over it (live, replay and the tuning bench)."""
        camera = cfg.camera(camera_id) if isinstance(camera_id, str) else camera_id
        backend = cfg.model.backend
        custom = [(m, self.custom_detector(m.engine(backend))) for m in camera.models]
        stage = CameraStage(camera, self.detector, cfg.tracker, cfg.health, custom, self.readers(cfg, camera),
                            describe=PlatePrivacy(cfg.privacy).log_fields, count_gate=count_gate)
        return stage, CameraEvents(stage, camera, self.factory, self.evidence, cfg.privacy, cfg.model, cfg.tracker)

    def readers(self, cfg: ServiceConfig, camera: CameraConfig) -> list[ReaderUse]:
        """The camera's second-stage readers; one loaded engine per distinct config, shared."""
        out = []
        for j, r in enumerate(camera.readers):
            if r.type == "plate" and cfg.privacy.plates == "off":
                raise ValueError(f"cameras[{camera.id}].readers[{j}]: plate reading is off (`privacy.plates: off`)")
            key = reader_key(r)
            if key not in self._readers:
                self._readers[key] = build_reader(r, self.data_dir)
            out.append(ReaderUse(r, self._readers[key]))
        return out


def build_core(cfg: ServiceConfig) -> Core:
    grid = GridIndex.load(cfg.grid.path, cfg.grid.scheme, cfg.grid.crs, cfg.grid.nearest_tolerance_m)
    factory = EventFactory(grid, Catalogue.load(cfg.catalogue))
    # Only load the model when some camera has rules for it (sensors-only, or cameras watched
    # for health alone, need none).
    needed = cfg.cluster.enabled or any(c.rules or c.classes for c in cfg.cameras)
    detector = YoloDetector(cfg.model, cfg.data_dir) if needed else None
    return Core(detector, factory, LocalEvidenceStore(cfg.evidence_dir), cfg.data_dir, MergeStage(cfg.merge))
