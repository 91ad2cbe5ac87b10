"""Detection filters applied before tracking: per-class score, area and aspect, and masks."""
from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon

from detectors.detector_config import MaskConfig, ObjectFilterConfig
from detectors.detections import Detections


class DetectionFilter:
    def __init__(self, objects: dict[str, ObjectFilterConfig], masks: MaskConfig) -> None:
        self.objects = objects
        self._include = [Polygon(p) for p in masks.include]
        self._exclude = [Polygon(p) for p in masks.exclude]
        for poly in (*self._include, *self._exclude):
            shapely.prepare(poly)

    def __call__(self, dets: Detections) -> Detections:
        if not len(dets) or not (self.objects or self._include or self._exclude):
            return dets
        h, w = dets.shape
        keep = np.ones(len(dets), bool)
        xyxy = dets.xyxy / np.array([w, h, w, h], np.float32)
        bw, bh = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
        area, aspect = bw * bh, bw / np.maximum(bh, 1e-6)
        for i, label in enumerate(dets.labels()):
            f = self.objects.get(label)
            if f is None:
                continue
            keep[i] = ((f.min_score is None or dets.conf[i] >= f.min_score)
                       and f.min_area <= area[i] <= f.max_area and f.min_aspect <= aspect[i] <= f.max_aspect)
        ax, ay = (xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]  # anchors: bottom-centre
        if self._include:
            keep &= np.any([shapely.contains_xy(p, ax, ay) for p in self._include], axis=0)
        for poly in self._exclude:
            keep &= ~shapely.contains_xy(poly, ax, ay)
        return dets[keep]
