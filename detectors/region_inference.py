"""Region inference behind the change gate: what each model runs on, and its detections merged back.

One per camera (`detectors.camera_stage.CameraStage.gated`). For each analysed frame `images()`
asks the gate (`detectors.change_gate`) and returns what every model of the camera runs on: the
frame (full), the changed region cropped from it (region; the detector letterboxes it to its input
size like any image), or nothing (skip). `combine()` takes the models' results back, in the same
order, and gives each model the detections of the whole frame:

- full: its detections; region: its detections in the crop, moved back into frame pixels, plus
  the last detections that lie mostly outside the crop (the unchanged part keeps what was found
  there), without those the crop found again cut at its edge; skip: the last detections again.

The tracker and the rules then run as on any frame, with the frame's own time: on a skipped frame
they see the same boxes at the same places, so stationary vehicles, stalls and left objects stay
seen (a track is never counted missing because the model was not asked), their timers run on,
and their incidents stay open. Something that leaves changes the picture where it stood, so the
model runs there and its detection goes.
"""
from __future__ import annotations

import numpy as np

from detectors.change_gate import ChangeGate, GatePlan, input_size
from detectors.detections import Detections
from detectors.gate_config import ChangeGateConfig


class GatedInference:
    def __init__(self, cfg: ChangeGateConfig, imgsz: list[int], resizable: bool = True) -> None:
        """`imgsz`: each model's input size (the first decides the regions); `resizable`: every
        model can run at other input sizes (else any change runs the whole frame)."""
        self.gate = ChangeGate(cfg, imgsz[0], resizable)
        self.imgsz = imgsz
        models = len(imgsz)
        self.models = models
        self.last: list[Detections | None] = [None] * models
        self.plan: GatePlan | None = None

    def images(self, image: np.ndarray, now: float) -> list[list[tuple[np.ndarray, tuple[int, int] | None]]]:
        """What each model runs on for this frame, model by model: [(frame, None)], [(crop, input
        size)] or []."""
        boxes = [tuple(float(v) for v in b) for d in self.last if d is not None for b in d.xyxy]
        unknown = any(d is None or d.shape != image.shape[:2] for d in self.last)
        plan = self.plan = self.gate.plan(image, now, boxes, full=unknown)
        if plan.kind == "full":
            return [[(image, None)] for _ in self.imgsz]
        if plan.kind == "region":
            x1, y1, x2, y2 = plan.crop
            crop = image[y1:y2, x1:x2]
            long_side = max(image.shape[:2])
            return [[(crop, plan.size if i == 0 else input_size(plan.crop, n / long_side))]
                    for i, n in enumerate(self.imgsz)]
        return [[] for _ in self.imgsz]

    def combine(self, results: list[Detections], model_s_per_frame: float) -> list[Detections]:
        """Each model's detections on the whole frame, from `results` (one per model and image of
        `images()`, model by model). `model_s_per_frame`: what one frame costs the models (for the
        model time a skipped frame saved)."""
        plan = self.plan
        if plan is None:
            raise RuntimeError("GatedInference.combine without images(): nothing was planned")
        per = 0 if plan.kind == "skip" else 1
        if len(results) != per * self.models:
            raise ValueError(f"expected {per * self.models} detection results for a {plan.kind} frame, got {len(results)}")
        out: list[Detections] = []
        for i in range(self.models):
            if plan.kind == "full":
                d = results[i]
            elif plan.kind == "region":
                d = _merge(self.last[i], results[i], plan)
            else:
                d = self.last[i]
            self.last[i] = d
            out.append(d)
        self.gate.seen(plan, model_s_per_frame)
        self.plan = None
        return out


def _merge(last: Detections, found: Detections, plan: GatePlan) -> Detections:
    x1, y1, x2, y2 = plan.crop
    h, w = plan.shape
    new = found.xyxy + np.array([x1, y1, x1, y1], np.float32) if len(found) else found.xyxy.reshape(0, 4)
    old = last.xyxy
    # Old detections mostly inside the crop were looked at again: the crop's answer replaces them.
    inside = _inside_fraction(old, plan.crop)
    keep_old = inside < 0.5
    # A new detection cut by an inner edge of the crop, over a kept old one, is that object seen in part.
    keep_new = np.ones(len(new), bool)
    if keep_old.any() and len(new):
        e = 2.0
        at_edge = (((new[:, 0] <= x1 + e) & (x1 > 0)) | ((new[:, 1] <= y1 + e) & (y1 > 0))
                   | ((new[:, 2] >= x2 - e) & (x2 < w)) | ((new[:, 3] >= y2 - e) & (y2 < h)))
        for j in np.flatnonzero(at_edge):
            if (_overlap_of(new[j], old[keep_old]) > 0.5).any():
                keep_new[j] = False
    xyxy = np.concatenate([old[keep_old], new[keep_new]]).astype(np.float32)
    conf = np.concatenate([last.conf[keep_old], found.conf[keep_new]]).astype(np.float32)
    cls = np.concatenate([last.cls[keep_old], found.cls[keep_new]]).astype(np.float32)
    return Detections(xyxy, conf, cls, found.names, (h, w))


def _inside_fraction(boxes: np.ndarray, crop) -> np.ndarray:
    if not len(boxes):
        return np.zeros(0)
    x1, y1, x2, y2 = crop
    iw = np.clip(np.minimum(boxes[:, 2], x2) - np.maximum(boxes[:, 0], x1), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], y2) - np.maximum(boxes[:, 1], y1), 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    return iw * ih / area


def _overlap_of(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Fraction of `box` covered by each of `others`."""
    iw = np.clip(np.minimum(others[:, 2], box[2]) - np.maximum(others[:, 0], box[0]), 0, None)
    ih = np.clip(np.minimum(others[:, 3], box[3]) - np.maximum(others[:, 1], box[1]), 0, None)
    return iw * ih / max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
