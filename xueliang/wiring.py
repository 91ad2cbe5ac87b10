"""Builds the parts that `run` and `replay` share from a validated config."""
from __future__ import annotations

from dataclasses import dataclass

from bridge.catalogue import Catalogue
from bridge.events import EventFactory
from bridge.evidence import EvidenceStore
from bridge.grid import GridIndex
from detectors.yolo import YoloDetector
from xueliang.config import ServiceConfig
from xueliang.pipeline import CameraPipeline


@dataclass
class Core:
    detector: YoloDetector | None  # None when the config has no cameras (sensors only)
    factory: EventFactory
    evidence: EvidenceStore

    def pipeline(self, cfg: ServiceConfig, camera_id: str) -> CameraPipeline:
        return CameraPipeline(cfg, cfg.camera(camera_id), self.detector, self.factory, self.evidence)


def build_core(cfg: ServiceConfig) -> Core:
    grid = GridIndex.load(cfg.grid.path, cfg.grid.scheme, cfg.grid.crs)
    factory = EventFactory(grid, Catalogue.load(cfg.catalogue))
    return Core(YoloDetector(cfg.model, cfg.data_dir) if cfg.cameras else None, factory, EvidenceStore(cfg.evidence_dir))
