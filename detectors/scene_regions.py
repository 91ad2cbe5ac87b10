"""The scene model's pieces on one region: connected components, and added / removed / light judgement."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from detectors.detector_config import SceneModelConfig

Kind = Literal["added", "removed", "light"]
_K3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


PxBox = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, end exclusive


@dataclass(frozen=True, slots=True)
class Component:
    mask: np.ndarray  # bool, the model's resolution
    area: int  # pixels
    box: PxBox


@dataclass
class Region:
    id: int
    blob: Component
    appeared_at: float
    static_since: float
    last_seen: float
    score: float
    core: Component | None = None  # its blob when it was judged: it may grow and shrink, not wander off
    look: np.ndarray | None = None  # its pixels (normalised grey, its box) when last seen
    occluded: bool = False
    gone: int = 0  # consecutive frames its pixels matched the reference

    def seen(self, blob: Component, grey: np.ndarray, now: float) -> None:
        x1, y1, x2, y2 = blob.box
        self.blob, self.look, self.last_seen, self.occluded, self.gone = blob, grey[y1:y2, x1:x2].copy(), now, False, 0

    def visible_in(self, blob: Component, grey: np.ndarray, thr: float) -> bool:
        """What of it lies in `blob` still looks as it did when last seen (nothing stands in front of it)."""
        if self.look is None:
            return False
        x1, y1, x2, y2 = self.blob.box
        m = self.mask[y1:y2, x1:x2] & blob.mask[y1:y2, x1:x2]
        return bool(m.any()) and float((np.abs(grey[y1:y2, x1:x2][m] - self.look[m]) <= thr).mean()) >= 0.7

    @property
    def mask(self) -> np.ndarray:
        return self.blob.mask


def components(binary: np.ndarray, min_px: int) -> list[Component]:
    """Connected regions of a 0/1 uint8 image with at least `min_px` pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    out = []
    for i in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_px) + 1:
        x, y, w, h, area = (int(v) for v in stats[i])
        mask = np.zeros(binary.shape, bool)
        mask[y:y + h, x:x + w] = labels[y:y + h, x:x + w] == i
        out.append(Component(mask, area, (x, y, x + w, y + h)))
    return out


def overlap(a: Component, b: Component) -> float:
    """Shared pixels over the smaller blob's (0 when their boxes do not meet)."""
    x1, y1 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    x2, y2 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    if x2 <= x1 or y2 <= y1:
        return 0.0
    inter = np.count_nonzero(a.mask[y1:y2, x1:x2] & b.mask[y1:y2, x1:x2])
    return inter / max(1, min(a.area, b.area))


def fraction(mask: np.ndarray, box: PxBox, of: np.ndarray) -> float:
    """Fraction of the blob's pixels that are set in `of`."""
    x1, y1, x2, y2 = box
    m = mask[y1:y2, x1:x2]
    return float(of[y1:y2, x1:x2][m].mean()) if m.any() else 0.0


def _edges(img: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def classify(current: np.ndarray, reference: np.ndarray, mask: np.ndarray, box: PxBox, thr: float,
             cfg: SceneModelConfig) -> tuple[Kind, float]:
    """Is the region an object added to the scene, one removed from it, or a change of light?

    - light or shadow: inside, the reference's texture is still there (correlation at least
      `light_ncc`), only brighter or darker;
    - added: along its outline the current frame has clearly more edge energy than the reference
      (`added_edge_ratio`): a new object's contour. Removed (a ghost): the reference has more:
      the contour of what left. Neither (a soft outline, as light pools and shadows have): light.
    Returns the kind and, for added, a 0..1 confidence from the edge ratio.
    """
    h, w = mask.shape
    if np.count_nonzero(mask) > cfg.global_change_fraction * mask.size:
        return "light", 0.0  # most of the view: the light or the camera changed, not an object
    x1, y1, x2, y2 = box
    x1, y1, x2, y2 = max(0, x1 - 3), max(0, y1 - 3), min(w, x2 + 3), min(h, y2 + 3)
    m = mask[y1:y2, x1:x2].astype(np.uint8)
    cur, ref = current[y1:y2, x1:x2], reference[y1:y2, x1:x2]
    inner = m.astype(bool)
    ref_in, cur_in = ref[inner], cur[inner]
    if ref_in.size > 8 and ref_in.std() > 0.5 * thr and cur_in.std() > 1e-3:
        ncc = float(np.corrcoef(ref_in, cur_in)[0, 1])
        if ncc >= cfg.light_ncc:
            return "light", 0.0
    band = (cv2.dilate(m, _K3) - cv2.erode(m, _K3)).astype(bool)
    if not band.any():
        return "light", 0.0
    e_cur = float(_edges(cur)[band].mean()) + thr
    e_ref = float(_edges(ref)[band].mean()) + thr
    ratio = e_cur / e_ref
    if ratio >= cfg.added_edge_ratio:
        return "added", min(1.0, 0.5 + 0.5 * (1.0 - 1.0 / ratio))
    if ratio <= 1.0 / cfg.added_edge_ratio:
        return "removed", 0.0
    return "light", 0.0
