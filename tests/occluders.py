"""Composite clips for occlusions: real patches (people cut from the table clip, a slab of the car
clip's asphalt) laid over a real empty frame of the table scene, each at a position that may
change with time (a person walking out, an occluder sliding across)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.composites import frame_at
from tests.helpers import FIXTURES, TABLE_CLIP

CARS = FIXTURES / "car-detection.mp4"
# People standing at the table (yolov8n boxes, pixels): a woman in a grey cardigan at 12 s, a man
# in black at 30 s. Both crops carry the table behind them, so pasted where they were cut from
# they stand at the table of the empty scene.
GREY_AT_TABLE = (12.0, (384, 17, 518, 391))
BLACK_AT_TABLE = (30.0, (381, 4, 543, 380))


def empty_table() -> np.ndarray:
    """The table scene with nobody in it (between the first and the second stay)."""
    return frame_at(TABLE_CLIP, 20.5)


def person(which: tuple[float, tuple[int, int, int, int]]) -> tuple[np.ndarray, tuple[int, int]]:
    """The person's crop and the top-left corner it was cut at."""
    t, (x1, y1, x2, y2) = which
    return frame_at(TABLE_CLIP, t)[y1:y2, x1:x2].copy(), (x1, y1)


def asphalt_slab(width: int, height: int) -> np.ndarray:
    """A large patch of the car clip's road: an occluder the model does not call a person."""
    img = frame_at(CARS, 10.0)
    return img[:height, 100:100 + width].copy()


@dataclass(frozen=True)
class Layer:
    patch: np.ndarray
    at: Callable[[float], tuple[int, int] | None]  # top-left corner at time t (pixels), None: not shown


def stays(xy: tuple[int, int], t0: float, t1: float = 1e9) -> Callable[[float], tuple[int, int] | None]:
    return lambda t: xy if t0 <= t < t1 else None


def moves(points: list[tuple[float, tuple[int, int]]]) -> Callable[[float], tuple[int, int] | None]:
    """Piecewise linear through (time, top-left) points; not shown before the first or after the last."""
    def at(t: float):
        if t < points[0][0] or t > points[-1][0]:
            return None
        for (ta, (xa, ya)), (tb, (xb, yb)) in zip(points, points[1:]):
            if ta <= t <= tb:
                k = (t - ta) / (tb - ta) if tb > ta else 0.0
                return int(xa + k * (xb - xa)), int(ya + k * (yb - ya))
        return points[-1][1]
    return at


def _draw(img: np.ndarray, patch: np.ndarray, xy: tuple[int, int]) -> None:
    h, w = img.shape[:2]
    x, y = xy
    ph, pw = patch.shape[:2]
    x1, y1, x2, y2 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
    if x2 > x1 and y2 > y1:
        img[y1:y2, x1:x2] = patch[y1 - y:y2 - y, x1 - x:x2 - x]


def make_scene(background: np.ndarray, dst: Path, duration_s: float, layers: list[Layer], fps: int = 10) -> Path:
    """`duration_s` of `background` with `layers` drawn in order (later ones on top), as H.264."""
    with av.open(str(dst), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.height, v.width = background.shape[:2]
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "veryfast", "crf": "20", "g": str(2 * fps)}
        for n in range(int(duration_s * fps)):
            t = n / fps
            img = background.copy()
            for layer in layers:
                xy = layer.at(t)
                if xy is not None:
                    _draw(img, layer.patch, xy)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = n, Fraction(1, fps)
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
    return dst
