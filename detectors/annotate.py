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
    return _jpeg(out, quality)


def crop_jpeg(image: np.ndarray, bbox: tuple[float, float, float, float], pad: float = 0.25, quality: int = 90) -> bytes:
    """The subject's box grown by `pad` of its size on each side, clipped to the frame."""
    h, w = image.shape[:2]
    bw, bh = bbox[2] - bbox[0], bbox[3] - bbox[1]
    x1, y1 = max(0, int((bbox[0] - pad * bw) * w)), max(0, int((bbox[1] - pad * bh) * h))
    x2, y2 = min(w, int((bbox[2] + pad * bw) * w) + 1), min(h, int((bbox[3] + pad * bh) * h) + 1)
    return _jpeg(image[y1:y2, x1:x2], quality)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
