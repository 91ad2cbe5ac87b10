"""Detections of one frame: boxes in pixels, scores, class ids, and the model's class names."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, pixels
    conf: np.ndarray  # (N,) float32
    cls: np.ndarray  # (N,) float32 class ids (float: the tracker expects it)
    names: dict[int, str] = field(repr=False)
    shape: tuple[int, int] = (0, 0)  # (height, width) of the frame

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx) -> Detections:
        return Detections(self.xyxy[idx], self.conf[idx], self.cls[idx], self.names, self.shape)

    @property
    def xywh(self) -> np.ndarray:
        """Centre x, centre y, width, height: the layout the Ultralytics trackers read."""
        out = np.empty_like(self.xyxy)
        out[:, 0] = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        out[:, 1] = (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2
        out[:, 2] = self.xyxy[:, 2] - self.xyxy[:, 0]
        out[:, 3] = self.xyxy[:, 3] - self.xyxy[:, 1]
        return out

    def labels(self) -> list[str]:
        return [self.names.get(int(c), str(int(c))) for c in self.cls]
