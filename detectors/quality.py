"""Video quality diagnosis (视频质量诊断): cheap pure checks on sampled frames.

Every check works on a 160x90 thumbnail (about 0.1 ms to make from 1080p keyframes already in
memory), so it can run on every camera. Checks that depend on the scene (blur, occlusion, view
moved) compare with the camera's reference thumbnail, learned from its first healthy frames or
given by the operator. Each check has its own threshold; `QualityMonitor` turns a check that holds
for `for_s` seconds into an active fault, which clears once the check has failed for `for_s`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SIZE = (160, 90)
CHECKS = ("no_signal", "frozen", "blur", "occlusion", "brightness", "colour_cast", "view_moved")


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run video quality diagnosis on this camera's sampled frames.")
    for_s: float = Field(10.0, gt=0, description="A check must hold (or stop holding) this long to open (or clear) a fault.")
    reference_frames: int = Field(5, ge=1, description="Healthy frames averaged into the reference thumbnail.")
    no_signal_std: float = Field(4.0, gt=0, description="Grey standard deviation below which the picture is one flat colour (black, blue screen, no signal).")
    frozen_diff: float = Field(0.02, ge=0, description="Mean absolute grey difference to the previous sample below which the picture did not change at all.")
    blur_level: float = Field(0.4, gt=0, lt=1, description="Blurriness (0 sharp .. 1 blurred, Crété-Roffet) above which the picture is blurred or defocused.")
    occlusion_fraction: float = Field(0.35, gt=0, le=1, description="Fraction of the picture's blocks turned flat and unlike the reference that makes it covered.")
    dark_mean: float = Field(30.0, ge=0, le=255, description="Mean grey below which the picture is too dark.")
    bright_mean: float = Field(225.0, ge=0, le=255, description="Mean grey above which the picture is overexposed.")
    cast_ratio: float = Field(2.5, gt=0, description="Colour cast: mean chroma offset over chroma spread (Lab, equivalent-circle method) above this.")
    cast_shift: float = Field(
        15.0, gt=0,
        description="Colour cast against the reference: mean chroma (Lab a*, b*) moved this far from the reference "
        "thumbnail's. Catches a cast on a scene whose own colours are strong or warm, which the ratio cannot.",
    )
    view_shift: float = Field(0.15, gt=0, lt=1, description="View moved: shift from the reference above this fraction of the picture width.")


@dataclass(frozen=True)
class Thumb:
    grey: np.ndarray  # float32 90x160
    lab: np.ndarray  # float32 90x160x3, L 0..100, a/b centred on 0
    detail: np.ndarray  # float32 180x320 grey: blur needs more pixels than the rest

    @staticmethod
    def of(image: np.ndarray) -> "Thumb":
        mid = cv2.resize(image, (2 * SIZE[0], 2 * SIZE[1]), interpolation=cv2.INTER_AREA)
        small = cv2.resize(mid, SIZE, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
        return Thumb(grey, lab, cv2.cvtColor(mid, cv2.COLOR_BGR2GRAY).astype(np.float32))


def blurriness(grey: np.ndarray) -> float:
    """0 sharp .. 1 blurred: how much of the edge contrast survives a further blur (Crété-Roffet)."""
    worst = 0.0
    for axis, k in ((1, (9, 1)), (0, (1, 9))):
        d = np.abs(np.diff(grey, axis=axis))
        db = np.abs(np.diff(cv2.blur(grey, k), axis=axis))
        total = float(d.sum())
        worst = max(worst, (total - float(np.maximum(0, d - db).sum())) / max(total, 1e-6))
    return worst


def no_signal(cfg: QualityConfig, t: Thumb) -> bool:
    return float(t.grey.std()) < cfg.no_signal_std


def frozen(cfg: QualityConfig, t: Thumb, previous: Thumb | None) -> bool:
    return previous is not None and float(np.abs(t.grey - previous.grey).mean()) < cfg.frozen_diff


def blur(cfg: QualityConfig, t: Thumb) -> bool:
    return blurriness(t.detail) > cfg.blur_level


def _block_std(grey: np.ndarray, n: int = 8) -> np.ndarray:
    h, w = grey.shape
    return grey[: h - h % n, : w - w % n].reshape(n, h // n, n, w // n).std(axis=(1, 3))


def _block_mean(grey: np.ndarray, n: int = 8) -> np.ndarray:
    h, w = grey.shape
    return grey[: h - h % n, : w - w % n].reshape(n, h // n, n, w // n).mean(axis=(1, 3))


_COVER_CONTRAST = float(np.log(2.0))  # a flat block twice as dark (or bright) as the rest of the change


def occlusion(cfg: QualityConfig, t: Thumb, ref: Thumb) -> bool:
    """Blocks of the picture that a cover made flat and unlike the reference.

    A textured block that turned flat is covered. A block that was flat already (road, wall,
    sky) is covered when its brightness moved, against the reference, twice as far as the
    exposure of the picture did (the median change of the blocks that kept their texture), so
    a cloud or the camera's exposure control is no cover.
    """
    now, then = _block_std(t.grey), _block_std(ref.grey)
    flat = now < np.maximum(3.0, 0.35 * then)
    textured = then >= 3.0
    change = np.log((_block_mean(t.grey) + 16.0) / (_block_mean(ref.grey) + 16.0))
    kept = ~flat & textured
    exposure = float(np.median(change[kept])) if kept.sum() >= 4 else 0.0
    covered = flat & (textured | (np.abs(change - exposure) > _COVER_CONTRAST))
    return float(covered.mean()) >= cfg.occlusion_fraction


def brightness(cfg: QualityConfig, t: Thumb) -> bool:
    mean = float(t.grey.mean())
    return mean < cfg.dark_mean or mean > cfg.bright_mean


def colour_cast(cfg: QualityConfig, t: Thumb, ref: Thumb | None = None) -> bool:
    a, b = t.lab[..., 1], t.lab[..., 2]
    d = float(np.hypot(a.mean(), b.mean()))
    m = float(np.hypot(np.abs(a - a.mean()).mean(), np.abs(b - b.mean()).mean()))
    if d > 8.0 and d / max(m, 1e-6) > cfg.cast_ratio:
        return True
    # A warm room or a colourful scene has a large offset and a large spread of its own, so the
    # ratio misses a cast on it; against the camera's own reference the cast stands out.
    if ref is None:
        return False
    shift = float(np.hypot(a.mean() - ref.lab[..., 1].mean(), b.mean() - ref.lab[..., 2].mean()))
    return shift > cfg.cast_shift


def view_moved(cfg: QualityConfig, t: Thumb, ref: Thumb) -> bool:
    win = cv2.createHanningWindow(SIZE, cv2.CV_32F)
    # Copies: with a window, OpenCV's phaseCorrelate overwrites its inputs (seen with opencv 4.x).
    (dx, dy), _ = cv2.phaseCorrelate(ref.grey.copy(), t.grey.copy(), win)
    return bool(np.hypot(dx, dy) > cfg.view_shift * SIZE[0])


@dataclass
class _Debounce:
    since: float | None = None  # when the raw check last changed to its current value
    raw: bool = False
    active: bool = False


@dataclass
class QualityMonitor:
    """Per camera: feed sampled frames with their time; read which faults are active."""

    cfg: QualityConfig
    reference: Thumb | None = None
    _learning: list[Thumb] = field(default_factory=list)
    _previous: Thumb | None = None
    _state: dict[str, _Debounce] = field(default_factory=lambda: {c: _Debounce() for c in CHECKS})

    def raw_checks(self, t: Thumb) -> dict[str, bool | None]:
        """Each check on this thumbnail; None where the picture says nothing about it."""
        out: dict[str, bool | None] = {"no_signal": no_signal(self.cfg, t)}
        if out["no_signal"]:
            # A flat picture says nothing about motion, exposure, colour, focus or view: one
            # fault (no signal), not a black screen reported as frozen as well. The other checks
            # keep their course: on a dim low-contrast scene a passing headlight makes the
            # picture alternate between flat and dark, and that is still too dark.
            return out | {name: None for name in CHECKS if name != "no_signal"}
        out["frozen"] = frozen(self.cfg, t, self._previous)
        out["brightness"] = brightness(self.cfg, t)
        out["colour_cast"] = colour_cast(self.cfg, t, self.reference)
        if self.reference is not None:
            out["occlusion"] = occlusion(self.cfg, t, self.reference)
            out["blur"] = not out["occlusion"] and blur(self.cfg, t)
            out["view_moved"] = not out["occlusion"] and view_moved(self.cfg, t, self.reference)
        return out

    def since(self, check: str) -> float | None:
        """When the check's raw result last changed to what it is now."""
        return self._state[check].since

    def update(self, image: np.ndarray, now: float) -> dict[str, bool]:
        """Returns every check's debounced state after this frame."""
        t = Thumb.of(image)
        raw = self.raw_checks(t)
        self._previous = t
        if self.reference is None and not any(raw.values()):  # a flat picture is never learnt
            self._learning.append(t)
            if len(self._learning) >= self.cfg.reference_frames:
                grey = np.mean([x.grey for x in self._learning], axis=0).astype(np.float32)
                lab = np.mean([x.lab for x in self._learning], axis=0).astype(np.float32)
                detail = np.mean([x.detail for x in self._learning], axis=0).astype(np.float32)
                self.reference, self._learning = Thumb(grey, lab, detail), []
        for name, value in raw.items():
            if value is None:
                continue
            st = self._state[name]
            if value != st.raw or st.since is None:
                st.raw, st.since = value, now
            if value != st.active and now - st.since >= self.cfg.for_s:
                st.active = value
        return {name: st.active for name, st in self._state.items()}
