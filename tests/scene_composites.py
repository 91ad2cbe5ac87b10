"""Timelines for the scene model and the dumping / pile rules, built from real frames.

The scene is the real parking-lot lane of car-detection.mp4 in its car-free stretches (real
sensor noise and compression, cycled at 2 frames/s); into it go real patches (a person cut from
the table clip, the white car of the lane clip as a parked car or a bus) and a dark, untextured
bag (not a COCO class: no detector knows it). Frames can be darkened to night level with noise,
lit by a lamp that switches on, and shaken. People and vehicles are also given to the analyzer
as detections where they are pasted, so the real tracker, rules, fusion and lifecycle run; the
scene model sees only the pixels.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import av
import cv2
import numpy as np

from detectors.analyzer import CameraAnalyzer
from detectors.detector_config import SceneModelConfig, TrackerConfig, ZoneConfig
from detectors.detections import Detections
from detectors.yolo import coco_names as _coco_names
from tests.composites import TABLE
from tests.helpers import FIXTURES

LANE = FIXTURES / "car-detection.mp4"
EMPTY_LANE = [(0.0, 4.4), (9.6, 14.0), (19.6, 25.0)]  # seconds of the lane clip with no car in view
W, H = 384, 216  # half the clip's size: plenty for a model that works at 320 px, and fast


@lru_cache(maxsize=1)
def lane_frames() -> tuple[np.ndarray, ...]:
    """The empty lane at 2 frames/s: real frames with their own noise and compression."""
    out, nxt = [], 0.0
    with av.open(str(LANE)) as c:
        for f in c.decode(video=0):
            if f.time >= nxt and any(a <= f.time <= b for a, b in EMPTY_LANE):
                out.append(cv2.resize(f.to_ndarray(format="bgr24"), (W, H), interpolation=cv2.INTER_AREA))
                nxt = f.time + 0.5
    return tuple(out)


def _frame(path, t: float, box) -> np.ndarray:
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if f.time >= t:
                x1, y1, x2, y2 = box
                return f.to_ndarray(format="bgr24")[y1:y2, x1:x2].copy()
    raise ValueError(t)


@lru_cache(maxsize=None)
def person_patch() -> np.ndarray:
    """A person at the table (yolov8n box at 60 s), with the room around them."""
    return _frame(TABLE, 60.0, (410, 1, 562, 391))


@lru_cache(maxsize=None)
def car_patch() -> np.ndarray:
    """The white car of the lane clip, seen from above (yolov8n box at 6.5 s)."""
    return _frame(LANE, 6.5, (271, 49, 430, 302))


def bag_patch() -> tuple[np.ndarray, np.ndarray]:
    """A dark, untextured bin bag: a near-black blob with a soft highlight, and its shape."""
    h, w = 60, 80
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2 + 4), (w // 2 - 2, h // 2 - 6), 0, 0, 360, 255, -1)
    cv2.ellipse(mask, (w // 2, 10), (10, 8), 0, 0, 360, 255, -1)  # the knot
    img = np.full((h, w, 3), 22, np.uint8)
    cv2.ellipse(img, (w // 2 - 10, h // 2), (14, 8), 0, 0, 360, (34, 34, 34), -1)
    return img, mask > 0


@lru_cache(maxsize=None)
def pile_patch() -> tuple[np.ndarray, np.ndarray]:
    """Boards and planks (the table room's wooden floor) heaped in a mound shape."""
    img = _frame(TABLE, 1.0, (40, 330, 340, 430))
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h), (w // 2 - 2, h - 4), 0, 180, 360, 255, -1)
    return img, mask > 0


Box = tuple[float, float, float, float]
coco_names = lru_cache(maxsize=1)(_coco_names)


@dataclass
class Thing:
    """Something in the scene: where its bottom-centre is (normalised) at time t, or None."""

    patch: np.ndarray
    height: float  # fraction of the frame height
    where: Callable[[float], tuple[float, float] | None]
    label: str | None = None  # detected as this class (given to the analyzer), or not detected
    mask: np.ndarray | None = None  # its shape inside the patch (None: the whole rectangle)
    grow: Callable[[float], float] = lambda t: 1.0  # how much of it is there yet (a pile growing from the middle)

    def box(self, t: float) -> Box | None:
        at = self.where(t)
        if at is None:
            return None
        ph = self.height
        pw = ph * H * self.patch.shape[1] / self.patch.shape[0] / W
        return (at[0] - pw / 2, at[1] - ph, at[0] + pw / 2, at[1])

    def _mask(self, t: float, pw: int, ph: int) -> np.ndarray:
        full = np.ones((ph, pw), bool) if self.mask is None else \
            cv2.resize(self.mask.astype(np.uint8), (pw, ph), interpolation=cv2.INTER_NEAREST) > 0
        g = self.grow(t)
        if g >= 1.0:
            return full
        gw, gh = max(1, int(pw * g)), max(1, int(ph * g))
        part = np.zeros_like(full)
        x0 = (pw - gw) // 2
        part[ph - gh:, x0:x0 + gw] = cv2.resize(full.astype(np.uint8), (gw, gh), interpolation=cv2.INTER_NEAREST) > 0
        return part

    def paste(self, img: np.ndarray, t: float) -> None:
        box = self.box(t)
        if box is None:
            return
        x1, y1, x2, y2 = int(box[0] * W), int(box[1] * H), int(box[2] * W), int(box[3] * H)
        pw, ph = max(2, x2 - x1), max(2, y2 - y1)
        patch = cv2.resize(self.patch, (pw, ph), interpolation=cv2.INTER_AREA)
        mask = self._mask(t, pw, ph)
        ox, oy = max(0, -x1), max(0, -y1)
        cx1, cy1, cx2, cy2 = max(0, x1), max(0, y1), min(W, x1 + pw), min(H, y1 + ph)
        if cx2 <= cx1 or cy2 <= cy1:
            return
        region, sub = img[cy1:cy2, cx1:cx2], mask[oy:oy + cy2 - cy1, ox:ox + cx2 - cx1]
        region[sub] = patch[oy:oy + cy2 - cy1, ox:ox + cx2 - cx1][sub]


def still(x: float, y: float, t0: float = -1e9, t1: float = 1e9):
    return lambda t: (x, y) if t0 <= t < t1 else None


def walk(points: list[tuple[float, float, float]]):
    """Through (t, x, y) waypoints, linearly; absent before the first and after the last."""
    def at(t):
        if t < points[0][0] or t > points[-1][0]:
            return None
        for (ta, xa, ya), (tb, xb, yb) in zip(points, points[1:]):
            if ta <= t <= tb:
                f = (t - ta) / (tb - ta) if tb > ta else 0.0
                return xa + f * (xb - xa), ya + f * (yb - ya)
        return points[-1][1:]
    return at


@dataclass
class Timeline:
    things: list[Thing]
    light: Callable[[float], float] = lambda t: 1.0  # brightness factor
    lamp_from: float | None = None  # a street lamp's pool of light from this time
    noise: float = 0.0  # sensor noise, grey levels
    shake_px: int = 0  # random camera shake, pixels either way
    seed: int = 0
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def frame(self, t: float) -> np.ndarray:
        bg = lane_frames()
        img = bg[int(round(t * 2)) % len(bg)].copy()
        for thing in self.things:
            thing.paste(img, t)
        f = img.astype(np.float32) * self.light(t)
        if self.lamp_from is not None and t >= self.lamp_from:
            f *= _lamp_pool()[..., None]
        if self.noise:
            f += self._rng.normal(0, self.noise, (H, W, 1)).astype(np.float32)
        img = np.clip(f, 0, 255).astype(np.uint8)
        if self.shake_px:
            dx, dy = self._rng.integers(-self.shake_px, self.shake_px + 1, 2)
            img = cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, dy]]), (W, H), borderMode=cv2.BORDER_REPLICATE)
        return img

    def detections(self, t: float) -> Detections:
        ids = {n: i for i, n in coco_names().items()}
        rows = [(b, ids[th.label]) for th in self.things if th.label and (b := th.box(t)) is not None]
        xyxy = np.array([[b[0] * W, b[1] * H, b[2] * W, b[3] * H] for b, _ in rows], np.float32).reshape(-1, 4)
        return Detections(np.clip(xyxy, 0, [W, H, W, H]).astype(np.float32), np.full(len(rows), 0.9, np.float32),
                          np.array([c for _, c in rows], np.float32), coco_names(), (H, W))


@lru_cache(maxsize=1)
def _lamp_pool() -> np.ndarray:
    """A street lamp's light on the ground: up to 2.5 times brighter at its centre, fading out."""
    yy, xx = np.mgrid[0:H, 0:W]
    return (1.0 + 1.5 * np.exp(-(((xx - 0.3 * W) / (0.25 * W)) ** 2 + ((yy - 0.4 * H) / (0.35 * H)) ** 2))).astype(np.float32)


GROUND = ZoneConfig(name="ground", polygon=[(0.0, 0.3), (1.0, 0.3), (1.0, 1.0), (0.0, 1.0)])


def run(timeline: Timeline, rules: list, until: float, fps: float = 1.0,
        scene: SceneModelConfig | None = None) -> tuple[list, CameraAnalyzer]:
    """Every incident change of `rules` over the timeline, analysed at `fps`."""
    analyzer = CameraAnalyzer("lane", [GROUND], rules, TrackerConfig(), fps, scene=scene or SceneModelConfig())
    changes, t = [], 0.0
    while t <= until + 1e-9:
        changes += analyzer.process(timeline.detections(t), t, image=timeline.frame(t))
        t = round(t + 1.0 / fps, 6)
    return changes, analyzer
