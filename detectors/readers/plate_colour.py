"""A plate's colour from its pixels: Chinese plates say what they are by their background.

blue: private cars; yellow: large vehicles (two-row at the rear of trucks and buses), learners;
green: new-energy vehicles (eight characters; white-to-green gradient on small cars, yellow-green
on large ones); white: police and military; black: foreign-owned and Hong Kong / Macau vehicles.
The background is the plate's dominant hue over saturated pixels (characters are white on blue
and black, black on yellow, green and white); a rectified crop in BGR is expected.
"""
from __future__ import annotations

import cv2
import numpy as np

from detectors.readers import PlateColour

# OpenCV hue is 0..180: yellow ~ 15..35, green ~ 35..85, blue ~ 95..130.
_HUES = (("yellow", 12, 34), ("green", 35, 90), ("blue", 91, 135))


def plate_colour(crop: np.ndarray, rows: int = 1, chars: int = 7) -> PlateColour:
    """`crop` is the rectified plate; `chars` the length of its text (new-energy plates have 8)."""
    h, w = crop.shape[:2]
    inner = crop[int(h * 0.1): int(h * 0.9), int(w * 0.05): int(w * 0.95)]
    hsv = cv2.cvtColor(inner, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    saturated = (sat > 70) & (val > 50)
    if saturated.mean() < 0.2:  # grey background: white or black plate
        if val.mean() > 130:
            return "white"
        return "black" if val.mean() < 90 else "unknown"
    counts = {name: int(((hue >= lo) & (hue <= hi) & saturated).sum()) for name, lo, hi in _HUES}
    best = max(counts, key=counts.get)
    if counts[best] < 0.15 * len(hue):
        return "unknown"
    if best == "yellow" and chars == 8:  # a large new-energy plate: yellow-green gradient
        return "green"
    if best == "yellow" and rows == 2:
        return "yellow-two-row"
    return best
