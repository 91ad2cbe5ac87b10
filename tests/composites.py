"""Composite clips made from real footage: a real object cut from one fixture clip, pasted into
the real scene of another at a known time. They give rules a known ground truth that no
fixture clip has (an object left behind at a stay, goods laid out at a table)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.helpers import FIXTURES

BOTTLES = FIXTURES / "bottle-detection.mp4"
TABLE = FIXTURES / "one-by-one-person-detection.mp4"


def frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if f.time >= t:
                return f.to_ndarray(format="bgr24")
    raise ValueError(f"{path} is shorter than {t} s")


def bottle_patch(which: int = 0, margin: int = 6) -> np.ndarray:
    """One of the three bottles of the bottle clip at 2 s, with a little of its table around it.
    Boxes from yolov8n on that frame: left, middle, right."""
    boxes = [(54, 108, 123, 315), (285, 109, 347, 314), (508, 107, 574, 317)]
    x1, y1, x2, y2 = boxes[which]
    img = frame_at(BOTTLES, 2.0)
    return img[y1 - margin:y2 + margin, x1 - margin:x2 + margin].copy()


@dataclass(frozen=True)
class Paste:
    patch: np.ndarray
    anchor: tuple[float, float]  # where the patch's bottom-centre goes, normalised
    height: float  # patch height as a fraction of the frame height
    appear_s: float  # seconds from the composite's start
    disappear_s: float = 1e9


def _paste(img: np.ndarray, p: Paste) -> None:
    import cv2

    h, w = img.shape[:2]
    ph = max(8, int(p.height * h))
    pw = max(4, int(p.patch.shape[1] * ph / p.patch.shape[0]))
    patch = cv2.resize(p.patch, (pw, ph), interpolation=cv2.INTER_AREA)
    x1 = int(p.anchor[0] * w - pw / 2)
    y2 = int(p.anchor[1] * h)
    x1, y1 = max(0, x1), max(0, y2 - ph)
    img[y1:y1 + ph, x1:x1 + pw] = patch[: min(ph, h - y1), : min(pw, w - x1)]


def make_composite(src: Path, dst: Path, start_s: float, end_s: float, pastes: list[Paste]) -> Path:
    """Frames of `src` from `start_s` to `end_s` with `pastes` applied, re-encoded as H.264."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate).limit_denominator(1000)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.options = {"preset": "veryfast", "crf": "20", "g": str(int(2 * rate))}
        n = 0
        for f in inp.decode(vin):
            if f.time < start_s:
                continue
            if f.time >= end_s:
                break
            img = f.to_ndarray(format="bgr24")
            t = f.time - start_s
            for p in pastes:
                if p.appear_s <= t < p.disappear_s:
                    _paste(img, p)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = n
            frame.time_base = 1 / rate
            for packet in vout.encode(frame):
                out.mux(packet)
            n += 1
        for packet in vout.encode():
            out.mux(packet)
    return dst
