"""Per-camera scene model: what the empty scene looks like, and which new regions have become part of it.

One job: fed the analysed frames of one camera (any size, any rate; times in seconds), it keeps

- a *long-term* background (the reference scene) and a *short-term* one, both downscaled colour
  images at `width` pixels, in brightness-normalised units (each frame is scaled by the typical
  ratio of the reference to it, the reference's median being 128: a lamp, the IR cut at night, a
  cloud or the camera's exposure moves that ratio, not the comparison);
- after re-registering each frame against the reference (phase correlation: small camera shake),
  a pixel differs from a background when the difference exceeds `min_contrast` or `noise_k` times
  the frame's own noise (robust estimate), whichever is larger;
- *static new regions*: connected pixels that differ from the reference but no longer from the
  short-term background (something that arrived and stopped), above `min_area` of the frame and
  static for `confirm_s`; each is then classified once by its outline: an object **added** to the
  scene has edges along its outline in the current frame that the reference lacks; an object
  **removed** (a parked car that left, a ghost) has them in the reference only; a change of
  light or a shadow keeps the reference's texture (high correlation) or has a soft outline. Only
  added objects become regions; the rest is taken into the reference at once.
- Each region keeps a stable id while it persists: hidden by something moving (a bus, a crowd)
  or merged into something much larger that stopped in front of it, it is held (`occluded`) for
  up to `occlusion_s`; it ends only when its pixels match the reference again (the object was
  taken away), or after `forget_after_s` (it is then part of the scene).

The reference is never updated under a region, so a left object is not learnt away while its
incident is open. `update()` returns a `SceneObservation`; `reference_image()` the reference
scene in colour, for evidence and the tuning bench. Nothing here knows about tracks or rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from detectors.detector_config import SceneModelConfig
from detectors.downscale import downscale
from detectors.scene_regions import Component, Region, classify, components, fraction, overlap

Box = tuple[float, float, float, float]
_LEVEL = 128.0  # brightness-normalised median


@dataclass(frozen=True, slots=True)
class SceneRegion:
    """A static new region (an object added to the scene), in normalised image coordinates."""

    id: int
    box: Box  # x1, y1, x2, y2 in 0..1
    area: float  # fraction of the frame
    appeared_at: float  # when its pixels first differed from the reference
    static_since: float  # when it was first seen standing still
    last_seen: float  # last time it was seen (not hidden)
    occluded: bool  # hidden now by something in front of it (held, not cleared)
    score: float  # 0..1: how clearly its outline is new (edge contrast against the reference)

    @property
    def anchor(self) -> tuple[float, float]:
        """Bottom-centre, where it stands on the ground."""
        return ((self.box[0] + self.box[2]) / 2, self.box[3])


@dataclass(frozen=True, slots=True)
class SceneObservation:
    now: float
    static_regions: tuple[SceneRegion, ...]  # added objects now in the scene (held ones included)
    changed_boxes: tuple[Box, ...]  # where the frame changed since the previous analysed frame
    changed_fraction: float  # fraction of the frame that changed since the previous analysed frame
    shift: tuple[float, float]  # camera shake compensated, fraction of width/height
    gain: float  # brightness normalisation applied (reference over frame, typical ratio)
    global_change: bool  # the whole scene changed at once (light switch, IR cut, camera moved): re-seeded


@dataclass
class _Candidate:
    blob: Component
    first: float
    hits: int = 1


@dataclass
class SceneModel:
    cfg: SceneModelConfig
    _long: np.ndarray | None = None  # reference scene, BGR float32, brightness-normalised
    _short: np.ndarray | None = None  # short-term background, likewise
    _prev: np.ndarray | None = None
    _since: np.ndarray | None = None  # per pixel: since when it differs from the reference (nan: it does not)
    _last_t: float | None = None
    _next_id: int = 1
    _regions: dict[int, Region] = field(default_factory=dict)
    _candidates: list[_Candidate] = field(default_factory=list)
    _window: np.ndarray | None = None
    _min_px: int = 4
    _noise: float | None = None  # difference noise, normalised grey levels
    _thr: float = 255.0
    frames: int = 0

    # ------------------------------------------------------------------ public

    def update(self, image: np.ndarray, now: float) -> SceneObservation:
        """Feed one analysed frame (BGR or grey, any size) taken at `now` (seconds)."""
        col, grey = self._prepare(image)
        self.frames += 1
        if self._long is None or self._long.shape != col.shape:
            gain = min(max(_LEVEL / max(4.0, float(np.median(grey[::3, ::3]))), 0.125), 8.0)
            self._seed(col * gain, grey * gain, now)
            return SceneObservation(now, (), (), 0.0, (0.0, 0.0), gain, False)
        dt = max(0.0, now - self._last_t) if self._last_t is not None else 0.0
        self._last_t = now
        ref_grey = cv2.cvtColor(self._long, cv2.COLOR_BGR2GRAY)
        # Brightness: the typical ratio of reference to frame over the whole image (objects that
        # come and go are a minority of pixels): a lamp, the IR cut, clouds and the camera's
        # exposure scale the frame, not the comparison. The reference stays at median 128.
        gain = min(max(float(np.median(ref_grey[::3, ::3] / (grey[::3, ::3] + 0.5))), 1 / 32), 32.0)
        col, grey = col * gain, grey * gain
        col, grey, shift = self._register(col, grey, ref_grey)
        # Change is the largest difference over the colour channels: a brown heap on grey asphalt
        # of the same brightness is still a change.
        d_short = cv2.absdiff(col, self._short).max(axis=2)
        thr = self._threshold(d_short, dt)
        fg_short = d_short > thr
        fg_long = cv2.absdiff(col, self._long).max(axis=2) > thr
        changed_boxes, changed_fraction = self._changed(grey, thr)
        held = self._held_mask()
        if fg_long.mean() > self.cfg.global_change_fraction and fg_short.mean() > self.cfg.global_change_fraction:
            # Everything changed at once: light switched, IR cut, the camera was moved. Start the
            # scene again from this frame, except under the objects already known.
            self._reseed(col, held)
            for r in self._regions.values():
                r.occluded = True
            return self._observe(now, changed_boxes, changed_fraction, shift, gain, True)
        since = self._since
        since[~fg_long] = np.nan
        since[fg_long & np.isnan(since)] = now
        static = (fg_long & ~fg_short).astype(np.uint8)
        static = cv2.morphologyEx(static, cv2.MORPH_OPEN, _K3)
        static = cv2.morphologyEx(static, cv2.MORPH_CLOSE, _K5)
        comps = components(static, self._min_px)
        unmatched = self._match_regions(comps, grey, thr, fg_long, fg_short, changed_fraction, now)
        busy = self._match_candidates(unmatched, col, grey, ref_grey, thr, now)
        # Backgrounds: the short-term one follows everything; the reference only what is neither
        # moving nor new (and never what is under a region or a candidate being judged).
        a_short = 1.0 - math.exp(-dt / self.cfg.short_tau_s) if dt else 0.0
        a_long = 1.0 - math.exp(-dt / self.cfg.long_tau_s) if dt else 0.0
        cv2.accumulateWeighted(col, self._short, a_short)
        if a_long:
            learn = (~(fg_short | self._held_mask() | busy)).astype(np.uint8)
            cv2.accumulateWeighted(col, self._long, a_long, learn)
        self._forget(now, col)
        return self._observe(now, changed_boxes, changed_fraction, shift, gain, False)

    @property
    def regions(self) -> tuple[SceneRegion, ...]:
        return tuple(self._view(r) for r in self._regions.values())

    def reference_image(self) -> np.ndarray | None:
        """The reference scene (what it looks like empty), BGR uint8 at the model's width."""
        return None if self._long is None else np.clip(self._long, 0, 255).astype(np.uint8)

    def overlay(self, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The reference scene with the current regions outlined (red; held ones yellow) and their ids."""
        ref = self.reference_image()
        if ref is None:
            return None
        w, h = size or (ref.shape[1], ref.shape[0])
        img = cv2.resize(ref, (w, h), interpolation=cv2.INTER_LINEAR)
        for r in self.regions:
            x1, y1, x2, y2 = (int(v * s) for v, s in zip(r.box, (w, h, w, h)))
            colour = (0, 220, 255) if r.occluded else (0, 0, 255)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            cv2.putText(img, f"#{r.id}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        return img

    @property
    def nbytes(self) -> int:
        """Memory the model holds (images and region masks), bytes."""
        arrays = [self._long, self._short, self._prev, self._since, self._window]
        total = sum(a.nbytes for a in arrays if a is not None)
        total += sum(r.mask.nbytes for r in self._regions.values()) + sum(c.blob.mask.nbytes for c in self._candidates)
        return total

    # ------------------------------------------------------------------ steps

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small = downscale(image, self.cfg.width)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        col = cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)
        return col, cv2.cvtColor(col, cv2.COLOR_BGR2GRAY)

    def _seed(self, col: np.ndarray, grey: np.ndarray, now: float) -> None:
        self._long, self._short, self._prev = col.copy(), col.copy(), grey.copy()
        self._since = np.full(grey.shape, np.nan, np.float32)
        self._window = cv2.createHanningWindow((grey.shape[1] // 2, grey.shape[0] // 2), cv2.CV_32F)
        self._min_px = max(4, int(self.cfg.min_area * grey.size))
        self._noise, self._thr = None, 255.0
        self._regions.clear()
        self._candidates.clear()
        self._last_t = now

    def _register(self, col: np.ndarray, grey: np.ndarray,
                  ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        """Shift the frame back onto the reference when the camera moved a little. The shift is
        estimated at half size (phase correlation) and kept only if it makes the frame match the
        reference better: a scene that changed (an object came, a car left) must not pull it."""
        h, w = grey.shape
        if self.cfg.max_shift <= 0:
            return col, grey, (0.0, 0.0)
        half = (w // 2, h // 2)
        # (OpenCV applies the window to its inputs in place: these are fresh arrays.)
        (dx, dy), response = cv2.phaseCorrelate(cv2.resize(ref, half, interpolation=cv2.INTER_AREA),
                                                cv2.resize(grey, half, interpolation=cv2.INTER_AREA), self._window)
        dx, dy = 2 * dx, 2 * dy
        if response < 0.05 or math.hypot(dx, dy) < 0.3 or math.hypot(dx, dy) > self.cfg.max_shift * w:
            return col, grey, (0.0, 0.0)
        m = np.float32([[1, 0, -dx], [0, 1, -dy]])
        moved = cv2.warpAffine(grey, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inner = ref[4:-4:2, 4:-4:2]
        before = float(np.median(cv2.absdiff(grey[4:-4:2, 4:-4:2], inner)))
        after = float(np.median(cv2.absdiff(moved[4:-4:2, 4:-4:2], inner)))
        if after >= 0.9 * before:
            return col, grey, (0.0, 0.0)
        col = cv2.warpAffine(col, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return col, moved, (dx / w, dy / h)

    def _threshold(self, d_short: np.ndarray, dt: float) -> float:
        """Smallest difference that is change: `min_contrast`, or `noise_k` times the noise. The
        noise (rain, sensor noise at night, compression) is the spread of the differences to the
        short-term background, from their lower quartile, followed with the short time constant
        but not while much of the view is changing (a light switching would read as noise)."""
        sample = d_short[::3, ::3]
        noise = float(np.percentile(sample, 25)) / 0.3186  # quartile of |N(0, s)| is 0.3186 s
        if self._noise is None:
            self._noise = noise
        elif float((sample > self._thr).mean()) < 0.25:
            self._noise += (1.0 - math.exp(-dt / self.cfg.short_tau_s)) * (noise - self._noise)
        self._thr = max(self.cfg.min_contrast, self.cfg.noise_k * self._noise)
        return self._thr

    def _changed(self, grey: np.ndarray, thr: float) -> tuple[tuple[Box, ...], float]:
        """What changed since the previous analysed frame (for change-gated work)."""
        moved = (cv2.absdiff(grey, self._prev) > thr).astype(np.uint8)
        self._prev = grey
        moved = cv2.morphologyEx(moved, cv2.MORPH_OPEN, _K3)
        h, w = grey.shape
        boxes = tuple((x1 / w, y1 / h, x2 / w, y2 / h) for x1, y1, x2, y2 in
                      (c.box for c in components(moved, self._min_px)))
        return boxes, float(moved.mean())

    def _held_mask(self) -> np.ndarray:
        held = np.zeros(self._long.shape[:2], bool)
        for r in self._regions.values():
            x1, y1, x2, y2 = r.blob.box
            held[y1:y2, x1:x2] |= r.mask[y1:y2, x1:x2]
        return held

    def _match_regions(self, comps: list[Component], grey: np.ndarray, thr: float, fg_long: np.ndarray,
                       fg_short: np.ndarray, changed: float, now: float) -> list[Component]:
        """Carry each region on; return the components that are no region's."""
        used: set[int] = set()
        extra: list[Component] = []
        for r in list(self._regions.values()):
            scored = [(overlap(r.blob, c), i) for i, c in enumerate(comps)]
            best_overlap, best = max(scored, default=(0.0, -1))
            if best_overlap >= 0.5:
                used.add(best)
                c = comps[best]
                if not r.visible_in(c, grey, thr):  # something stopped in front of it: held as it was
                    r.occluded = True
                elif r.core is not None and overlap(r.core, c) < 0.5:  # not what was judged: keep its shape
                    r.seen(r.blob, grey, now)
                elif c.area < r.blob.area:  # shrunk: only if what it lost looks like the reference again
                    lost = r.mask & ~c.mask
                    r.seen(c if not lost.any() or fg_long[lost].mean() < 0.3 else r.blob, grey, now)
                elif c.area <= self.cfg.max_growth * r.blob.area:  # itself, grown (piles grow)
                    r.seen(c, grey, now)
                else:  # still there, in a much larger blob (a pool of light, a car beside it): keep its shape
                    r.seen(r.blob, grey, now)
                    rest = c.mask & ~cv2.dilate(r.mask.astype(np.uint8), _K5).astype(bool)
                    extra += components(rest.astype(np.uint8), self._min_px)
                continue
            if fraction(r.mask, r.blob.box, fg_long) < 0.3 and not r.visible_in(r.blob, grey, thr):
                # It looks like the reference again, no longer like itself: taken away (twice in a
                # row, and not while much of the view is changing: a light switching, a crowd).
                r.gone = r.gone + 1 if changed < 0.25 else r.gone
                if r.gone >= 2:
                    del self._regions[r.id]
                continue
            r.gone = 0
            r.occluded = fraction(r.mask, r.blob.box, fg_short) >= 0.3  # something moving in front of it
        return [c for i, c in enumerate(comps) if i not in used] + extra

    def _match_candidates(self, comps: list[Component], col: np.ndarray, grey: np.ndarray, ref_grey: np.ndarray,
                          thr: float, now: float) -> np.ndarray:
        """Candidates static for `confirm_s` are judged once: added objects become regions, the
        rest (ghosts, light, shadows) goes into the reference. Returns the pixels still being judged."""
        busy = np.zeros(grey.shape, bool)
        keep: list[_Candidate] = []
        for c in comps:
            if any(overlap(r.blob, c) >= 0.5 for r in self._regions.values()):
                continue  # a known object's (its surroundings, or itself seen twice)
            cand = next((k for k in self._candidates if overlap(k.blob, c) >= 0.5), None)
            if cand is None:
                cand = _Candidate(c, now)
            else:
                cand.blob, cand.hits = c, cand.hits + 1
            if now - cand.first >= self.cfg.confirm_s and cand.hits >= 2:
                kind, score = classify(grey, ref_grey, c.mask, c.box, thr, self.cfg)
                if kind == "added":
                    since = self._since[c.mask]
                    appeared = float(np.nanmedian(since)) if np.isfinite(since).any() else cand.first
                    rid = self._next_id
                    self._next_id += 1
                    self._regions[rid] = Region(rid, c, min(appeared, cand.first), cand.first, now, score, core=c)
                    self._regions[rid].seen(c, grey, now)
                else:
                    self._absorb(c.mask, col)
                continue
            busy |= c.mask
            keep.append(cand)
        self._candidates = keep
        return busy

    def _absorb(self, mask: np.ndarray, col: np.ndarray) -> None:
        """Take this part of the current frame into the reference (a ghost, a change of light)."""
        grown = cv2.dilate(mask.astype(np.uint8), _K5).astype(bool)
        self._long[grown] = col[grown]
        self._short[grown] = col[grown]
        self._since[grown] = np.nan

    def _reseed(self, col: np.ndarray, held: np.ndarray) -> None:
        free = ~held
        self._long[free] = col[free]
        self._short[:] = col
        self._since[:] = np.nan
        self._candidates.clear()

    def _forget(self, now: float, col: np.ndarray) -> None:
        for r in list(self._regions.values()):
            if now - r.static_since > self.cfg.forget_after_s:
                del self._regions[r.id]
                self._absorb(r.mask, col)
            elif now - r.last_seen > self.cfg.occlusion_s:
                del self._regions[r.id]  # hidden too long: whatever is there now is judged afresh

    def _observe(self, now, changed_boxes, changed_fraction, shift, gain, global_change) -> SceneObservation:
        return SceneObservation(now, self.regions, changed_boxes, changed_fraction, shift, gain, global_change)

    def _view(self, r: Region) -> SceneRegion:
        h, w = r.mask.shape
        x1, y1, x2, y2 = r.blob.box
        return SceneRegion(r.id, (x1 / w, y1 / h, x2 / w, y2 / h), r.blob.area / r.mask.size,
                           r.appeared_at, r.static_since, r.last_seen, r.occluded, r.score)


_K3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
