"""Change gate: is the model needed on this frame, and where?

One per camera, shared by all its models (the main one and custom ones: one decision per frame).
It keeps a small grey picture of *what the model last saw*: the whole frame after a full run, the
region after a region run, nothing after a skipped frame. Each analysed frame is compared with it,
not with the previous frame, so a slow change (someone creeping, a pile growing) adds up until it
shows, and change the model has already seen does not count twice:

- brightness is normalised first: the frame is scaled by the typical (median) ratio of the picture
  to it, so a cloud, street lamps or the camera's exposure do not read as change everywhere; what
  still differs after that (a lamp lighting part of the street) is run once and is then what the
  model saw, so it is never "motion everywhere" for longer than one run;
- a pixel changed when it differs by more than `min_contrast` or `noise_k` times the noise (the
  spread of the differences, robust estimate), whichever is larger; blobs under `min_area` are
  dropped;
- no change: `skip` (the model does not run; the caller carries the last detections on);
  change: one `region` around all of it (with `margin`, grown to take in any last detection it
  touches so that object is seen whole). A region runs at the scale the whole frame runs at (the
  model's input is the region's size times that scale, rounded up to `region_step`): the model
  sees the objects at the size it sees them in the whole frame, so it finds what it would find
  there, at a fraction of the cost. A region whose input would be over `full_frame_area` of the
  whole frame's, the first frame, a new frame size, time going backwards or `refresh_s` since the
  last full run: `full`.

The camera's scene model (`detectors.scene_model`, left objects and piles) is a different thing:
a reference of the *empty* scene that learns slowly. The gate keeps no background of its own
beyond the one thumbnail of what the model saw; the two are not merged because they answer
different questions (what changed since the model looked vs. what is new in the empty scene).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from detectors.downscale import downscale
from detectors.gate_config import ChangeGateConfig

Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2
PixelBox = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class GatePlan:
    """What the model runs on for one frame."""

    kind: str  # "full", "region" or "skip"
    reason: str  # why: "first", "refresh", "size", "clock", "large", "change", "none", "off"
    crop: PixelBox | None  # the region (pixels of the frame) when kind is "region"
    size: tuple[int, int] | None  # the model input (h, w) for the region, at the frame's scale
    changed: tuple[Box, ...]  # where the frame differs from what the model last saw
    changed_fraction: float  # fraction of the frame that differs
    gain: float  # brightness normalisation applied (what the model saw over this frame)
    shape: tuple[int, int]  # (height, width) of the frame


@dataclass
class GateStats:
    """Counts since start: what the gate decided, and what it cost and saved."""

    frames: int = 0  # frames the gate decided on
    full: int = 0
    regions: int = 0
    skipped: int = 0
    gate_seconds: float = 0.0  # the gate's own work (comparison and merging)
    model_seconds_saved: float = 0.0  # skipped frames times the models' mean time per image

    def as_dict(self) -> dict:
        return {"frames": self.frames, "full": self.full, "regions": self.regions, "skipped": self.skipped,
                "gate_seconds": round(self.gate_seconds, 4), "model_seconds_saved": round(self.model_seconds_saved, 3)}


class ChangeGate:
    def __init__(self, cfg: ChangeGateConfig, imgsz: int = 640, regions: bool = True) -> None:
        """`imgsz`: the model's square input; `regions`: the model can run at other sizes (else a
        change runs the whole frame)."""
        self.cfg = cfg
        self.imgsz = imgsz
        self.regions = regions
        self._seen: np.ndarray | None = None  # grey thumbnail of what the model last saw (float32)
        self._last_full: float | None = None
        self._last_t: float | None = None
        self._noise: float | None = None
        self.stats = GateStats()
        self.last_plan: GatePlan | None = None
        self._pending: tuple[np.ndarray, GatePlan] | None = None

    def plan(self, image: np.ndarray, now: float, boxes: list[PixelBox] = (), full: bool = False) -> GatePlan:
        """Decide for `image` at `now` (seconds). `boxes` are the last detections (pixels): a region
        that touches one grows to take it in whole. `full`: the caller needs the whole frame run."""
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        grey = self._thumb(image)
        plan = self._decide(grey, now, (h, w), boxes)
        if full and plan.kind != "full":
            plan = GatePlan("full", "first", None, plan.changed, plan.changed_fraction, plan.gain, plan.shape)
        self._pending = grey, plan
        self._last_t = now
        self.last_plan = plan
        self.stats.gate_seconds += time.perf_counter() - t0
        return plan

    def seen(self, plan: GatePlan, model_s_per_frame: float) -> None:
        """The model ran as `plan` said (or was skipped): remember what it saw; count."""
        t0 = time.perf_counter()
        pending = self._pending
        if pending is None or pending[1] is not plan:
            return
        grey, _ = pending
        self._pending = None
        s = self.stats
        s.frames += 1
        if plan.kind == "full":
            s.full += 1
            self._seen = grey
            self._last_full = self._last_t
        elif plan.kind == "region":
            s.regions += 1
            s.model_seconds_saved += model_s_per_frame * (1.0 - plan.size[0] * plan.size[1] / self.imgsz ** 2)
            th, tw = grey.shape
            x1, y1, x2, y2 = plan.crop
            h, w = plan.shape
            ys, ye = int(y1 * th / h), int(np.ceil(y2 * th / h))
            xs, xe = int(x1 * tw / w), int(np.ceil(x2 * tw / w))
            self._seen[ys:ye, xs:xe] = grey[ys:ye, xs:xe] * plan.gain
        else:
            s.skipped += 1
            s.model_seconds_saved += model_s_per_frame
        s.gate_seconds += time.perf_counter() - t0

    def overlay(self, size: tuple[int, int] = (640, 360)) -> np.ndarray | None:
        """What the model last saw (grey), with the last frame's changed parts (red) and the region
        the model ran on (yellow; the whole picture green when it ran whole), for the tuning bench."""
        plan = self.last_plan
        if self._seen is None or plan is None:
            return None
        w, h = size
        img = cv2.cvtColor(cv2.resize(np.clip(self._seen, 0, 255).astype(np.uint8), (w, h)), cv2.COLOR_GRAY2BGR)
        for x1, y1, x2, y2 in plan.changed:
            cv2.rectangle(img, (int(x1 * w), int(y1 * h)), (int(x2 * w), int(y2 * h)), (0, 0, 255), 1)
        if plan.kind == "region":
            fh, fw = plan.shape
            x1, y1, x2, y2 = plan.crop
            cv2.rectangle(img, (int(x1 * w / fw), int(y1 * h / fh)), (int(x2 * w / fw) - 1, int(y2 * h / fh) - 1),
                          (0, 220, 255), 2)
        elif plan.kind == "full":
            cv2.rectangle(img, (1, 1), (w - 2, h - 2), (0, 200, 0), 2)
        label = f"{plan.kind} ({plan.reason}) changed {plan.changed_fraction:.1%}"
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 220, 255), 1, cv2.LINE_AA)
        return img

    # ------------------------------------------------------------------ steps

    def _thumb(self, image: np.ndarray) -> np.ndarray:
        small = downscale(image, self.cfg.width)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)

    def _decide(self, grey: np.ndarray, now: float, shape: tuple[int, int], boxes) -> GatePlan:
        def full(reason: str, changed=(), fraction: float = 1.0, gain: float = 1.0) -> GatePlan:
            return GatePlan("full", reason, None, None, tuple(changed), fraction, gain, shape)

        if self._seen is None:
            return full("first")
        if self._seen.shape != grey.shape:
            return full("size")
        if self._last_t is not None and now < self._last_t:
            return full("clock")  # a reconnect restarted the media clock
        seen = self._seen
        gain = float(np.median(seen[::2, ::2] / (grey[::2, ::2] + 0.5)))
        gain = min(max(gain, 1 / 32), 32.0)
        diff = cv2.absdiff(grey * gain, seen)
        thr = max(self.cfg.min_contrast, self.cfg.noise_k * (self._noise or 0.0))
        mask = (diff > thr).astype(np.uint8)
        # Noise (rain, sensor noise at night, compression): the spread of the differences, from their
        # lower quartile, followed only while most of the picture is unchanged (a picture that changed
        # everywhere, a broken frame, says nothing about noise) and never faster than 20 % a frame.
        sample = diff[::2, ::2]
        if float((sample > thr).mean()) < 0.25:
            noise = float(np.percentile(sample, 25)) / 0.3186  # quartile of |N(0, s)| is 0.3186 s
            self._noise = noise if self._noise is None else 0.8 * self._noise + 0.2 * noise
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _K3)
        th, tw = grey.shape
        min_px = max(2, int(self.cfg.min_area * grey.size))
        n, _, st, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        changed = [(x / tw, y / th, (x + bw) / tw, (y + bh) / th)
                   for x, y, bw, bh, area in st[1:] if area >= min_px]
        fraction = float(sum(int(a) for a in st[1:, 4] if a >= min_px)) / grey.size
        if self._last_full is None or now - self._last_full >= self.cfg.refresh_s:
            return full("refresh", changed, fraction, gain)
        if not changed:
            return GatePlan("skip", "none", None, None, (), 0.0, gain, shape)
        crop, size = self._region(changed, shape, boxes) if self.regions else (None, None)
        if crop is None or size[0] * size[1] > self.cfg.full_frame_area * self.imgsz ** 2:
            return full("large", changed, fraction, gain)
        return GatePlan("region", "change", crop, size, tuple(changed), fraction, gain, shape)

    def _region(self, changed: list[Box], shape: tuple[int, int], boxes) -> tuple[PixelBox | None, tuple | None]:
        h, w = shape
        x1 = min(b[0] for b in changed) * w
        y1 = min(b[1] for b in changed) * h
        x2 = max(b[2] for b in changed) * w
        y2 = max(b[3] for b in changed) * h
        for _ in range(3):  # take in whole any object the change touches (it may touch another)
            grown = False
            for bx1, by1, bx2, by2 in boxes:
                if bx1 < x2 and bx2 > x1 and by1 < y2 and by2 > y1 and not (bx1 >= x1 and by1 >= y1 and bx2 <= x2 and by2 <= y2):
                    x1, y1, x2, y2 = min(x1, bx1), min(y1, by1), max(x2, bx2), max(y2, by2)
                    grown = True
            if not grown:
                break
        long_side = max(w, h)
        m = self.cfg.margin * long_side
        x1, y1, x2, y2 = x1 - m, y1 - m, x2 + m, y2 + m
        scale = self.imgsz / long_side  # the whole frame's letterbox scale
        step = self.cfg.region_step / scale  # frame pixels per step of model input
        x1, x2 = _span(x1, x2, math.ceil(max(1.0, x2 - x1) / step) * step, w)
        y1, y2 = _span(y1, y2, math.ceil(max(1.0, y2 - y1) / step) * step, h)
        crop = int(x1), int(y1), int(math.ceil(x2)), int(math.ceil(y2))
        return crop, input_size(crop, scale)


def input_size(crop: PixelBox, scale: float) -> tuple[int, int]:
    """The (h, w) model input that shows `crop` at `scale`, in multiples of 32 (YOLO's stride)."""
    return (max(32, math.ceil((crop[3] - crop[1]) * scale / 32 - 1e-6) * 32),
            max(32, math.ceil((crop[2] - crop[0]) * scale / 32 - 1e-6) * 32))


def _span(a: float, b: float, least: float, limit: int) -> tuple[float, float]:
    """[a, b] grown about its centre to `least` (or the whole `limit`), shifted inside 0..limit."""
    if b - a < least:
        c = (a + b) / 2
        a, b = c - least / 2, c + least / 2
    if b - a >= limit:
        return 0.0, float(limit)
    if a < 0:
        a, b = 0.0, b - a
    if b > limit:
        a, b = a - (b - limit), float(limit)
    return max(0.0, a), min(float(limit), b)


_K3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
