"""Video quality checks on real fixture footage, altered the way a camera would be."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors.quality import QualityConfig, QualityMonitor
from ingest.video import iter_frames
from tests.helpers import FIXTURES, REPO

TABLE = REPO / "configs" / "media" / "table-stays.mp4"
BOTTLE = FIXTURES / "bottle-detection.mp4"
PERSON = FIXTURES / "one-by-one-person-detection.mp4"
CARS = FIXTURES / "car-detection.mp4"


def frames(path, limit=45):
    return [f.image for f in iter_frames("q", str(path), 1.0, decode="all")][:limit]


def active_faults(images, alter=lambda im, i: im, start=10) -> set[str]:
    mon, seen = QualityMonitor(QualityConfig()), set()
    for i, im in enumerate(images):
        out = mon.update(alter(im, i) if i >= start else im, float(i))
        seen |= {k for k, v in out.items() if v}
    return seen


@pytest.fixture(scope="module")
def clips():
    return {p.name: frames(p) for p in (TABLE, BOTTLE, PERSON, CARS)}


def test_silent_on_unaltered_clips(clips):
    for name, images in clips.items():
        assert active_faults(images) == set(), name


def test_black_frames_are_signal_loss(clips):
    for name, images in clips.items():
        assert active_faults(images, lambda im, i: np.full_like(im, 3)) == {"no_signal"}, name


def test_frozen_stretch(clips):
    for name, images in clips.items():
        assert active_faults(images, lambda im, i: images[10]) >= {"frozen"}, name


def test_defocus_is_blur(clips):
    for name, images in clips.items():
        assert "blur" in active_faults(images, lambda im, i: cv2.GaussianBlur(im, (0, 0), 6)), name


def test_shifted_view(clips):
    for name, images in clips.items():
        moved = active_faults(images, lambda im, i: np.roll(im, im.shape[1] // 4, axis=1))
        assert "view_moved" in moved, name


def test_dark_picture_is_abnormal_brightness(clips):
    for name, images in clips.items():
        assert "brightness" in active_faults(images, lambda im, i: (im * 0.12).astype(np.uint8)), name


def test_overexposed_picture_is_abnormal_brightness(clips):
    for name, images in clips.items():
        blown = active_faults(images, lambda im, i: np.clip(im.astype(np.int16) * 3 + 60, 0, 255).astype(np.uint8))
        assert "brightness" in blown, name


@pytest.mark.parametrize("cast", [(-40, 0, 60), (-30, 40, -30)], ids=["red (stuck IR-cut filter)", "green (cable)"])
def test_colour_cast(clips, cast):
    # On every clip, the two warm indoor ones included: their own warm balance is the reference.
    for name, images in clips.items():
        faults = active_faults(images, lambda im, i: np.clip(im.astype(np.int16) + cast, 0, 255).astype(np.uint8))
        assert "colour_cast" in faults, name


def test_covered_lens(clips):
    def cover(im, i):
        return cv2.rectangle(im.copy(), (0, 0), (im.shape[1] * 2 // 3, im.shape[0]), (25, 22, 20), -1)

    # On the top-down road clip the covered part was flat asphalt already: it is the change of
    # brightness there, beyond the exposure change of the rest, that shows the cover.
    for name, images in clips.items():
        assert "occlusion" in active_faults(images, cover), name
