"""A parked car with a real plate in real street footage, for the plate reader's pipeline test.

The car is the red Chevrolet of `../shared/fixtures/plates/plate_16_blue.jpg` (plate 云A4X315,
a photo taken at a gate), cut out with the ground around it and pasted, unscaled, standing still
into the frames of `car-detection.mp4` (a parking-lot lane where other cars drive through),
upscaled to 1280x720 so the pasted car keeps its own pixels. The clip is re-encoded as H.264.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests.helpers import FIXTURES, SHARED

PLATES = SHARED / "fixtures" / "plates"
CAR_PHOTO = PLATES / "plate_16_blue.jpg"
CAR_PLATE = "云A4X315"
CAR_BOX = (380, 0, 830, 320)  # the car in the photo (pixels, 1280x720), with some ground
SIZE = (1280, 720)
AT = (700, 300)  # top-left corner of the pasted car in the composite, pixels


def car_patch() -> np.ndarray:
    img = cv2.imread(str(CAR_PHOTO))
    if img is None:
        raise FileNotFoundError(CAR_PHOTO)
    x1, y1, x2, y2 = CAR_BOX
    return img[y1:y2, x1:x2].copy()


def parked_car_clip(dst: Path, appear_s: float = 2.0, end_s: float = 14.0) -> Path:
    """`car-detection.mp4` at 1280x720 with the car standing still from `appear_s`."""
    patch = car_patch()
    ph, pw = patch.shape[:2]
    x, y = AT
    with av.open(str(FIXTURES / "car-detection.mp4")) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate).limit_denominator(1000) / 2  # every other frame: half the encoding
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        vout.options = {"preset": "ultrafast", "crf": "18", "g": str(int(2 * rate))}
        n = 0
        for i, f in enumerate(inp.decode(vin)):
            if f.time >= end_s:
                break
            if i % 2:
                continue
            img = cv2.resize(f.to_ndarray(format="bgr24"), SIZE, interpolation=cv2.INTER_LINEAR)
            if f.time >= appear_s:
                img[y:y + ph, x:x + pw] = patch
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = n, 1 / rate
            for packet in vout.encode(frame):
                out.mux(packet)
            n += 1
        for packet in vout.encode():
            out.mux(packet)
    return dst


def car_box_normalised() -> tuple[float, float, float, float]:
    ph, pw = car_patch().shape[:2]
    x, y = AT
    return (x / SIZE[0], y / SIZE[1], (x + pw) / SIZE[0], (y + ph) / SIZE[1])
