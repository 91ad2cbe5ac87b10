"""The small picture the change gate and the scene model compare: cheap, and blind to pixel noise."""
from __future__ import annotations

import cv2
import numpy as np


def downscale(image: np.ndarray, width: int) -> np.ndarray:
    """`image` resized by area averaging to `width` pixels wide (never enlarged), the height
    following the aspect (at least 8 rows)."""
    h, w = image.shape[:2]
    width = min(width, w)
    height = max(8, round(h * width / w))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
