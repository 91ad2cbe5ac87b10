"""Evidence pictures: the frame with the zone and the subject's box drawn on it, as JPEG."""
from __future__ import annotations

import cv2
import numpy as np


def annotated_jpeg(
    image: np.ndarray,
    bbox: tuple[float, float, float, float] | None,
    zone: list[tuple[float, float]] | None,
    label: str = "",
    quality: int = 85,
) -> bytes:
    h, w = image.shape[:2]
    out = image.copy()
    if zone:
        pts = np.array([[x * w, y * h] for x, y in zone], np.int32)
        cv2.polylines(out, [pts], True, (0, 200, 255), 2)
    if bbox:
        x1, y1, x2, y2 = (int(round(v)) for v in (bbox[0] * w, bbox[1] * h, bbox[2] * w, bbox[3] * h))
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), 2)
        if label:
            cv2.putText(out, label, (x1, max(12, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
