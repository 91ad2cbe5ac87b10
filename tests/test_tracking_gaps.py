"""The tracker on detections with gaps in time: ByteTrack associates, seconds and missed frames
decide when a track is forgotten (synthetic boxes: no model, no video)."""
from __future__ import annotations

import numpy as np

from detectors.config import TrackerConfig
from detectors.detections import Detections
from detectors.tracking import Tracker

NAMES = {0: "person"}


def dets(*boxes) -> Detections:
    xyxy = np.array(boxes, np.float32).reshape(-1, 4)
    n = len(xyxy)
    return Detections(xyxy, np.full(n, 0.9, np.float32), np.zeros(n, np.float32), NAMES, (432, 768))


BOX = (400, 100, 480, 380)


def run(tracker: Tracker, frames: list[tuple[float, bool]]):
    ids = []
    for t, present in frames:
        live = tracker.update(dets(BOX) if present else dets(), t)
        ids.append((t, [(tr.id, tr.first_seen) for tr in live]))
    return ids


def test_a_gap_between_analysed_frames_does_not_end_a_track():
    # Configured for 5 frames/s; under load frames come seconds apart, and one of them misses her.
    frames = [(i / 5, True) for i in range(50)] + [(13.0, False), (16.0, True), (19.5, True)]
    out = run(Tracker(TrackerConfig(), analysis_fps=5), frames)
    first = out[0][1][0][0]
    assert out[-1][1] == [(first, 0.0)]  # the same track, seen since 0 s


def test_a_track_missing_in_enough_frames_for_long_enough_is_forgotten():
    frames = [(i / 5, True) for i in range(50)] + [(10 + i / 5, False) for i in range(1, 16)]
    out = run(Tracker(TrackerConfig(hold_s=0), analysis_fps=5), frames)
    gone = [t for t, live in out if not live]
    assert gone and abs(gone[0] - 11.8) < 0.01  # 2 s after the last sighting at 9.8 s (and 10 frames missed)
