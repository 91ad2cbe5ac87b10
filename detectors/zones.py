"""Zones: polygons in normalised image coordinates, tested against a box's bottom-centre."""
from __future__ import annotations

import shapely
from shapely.geometry import Polygon

from detectors.detector_config import ZoneConfig


class Zone:
    def __init__(self, cfg: ZoneConfig) -> None:
        self.name = cfg.name
        self.points = list(cfg.polygon)
        self._polygon = Polygon(cfg.polygon)
        shapely.prepare(self._polygon)

    def contains(self, x: float, y: float) -> bool:
        return bool(shapely.contains_xy(self._polygon, x, y))
