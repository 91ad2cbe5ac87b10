"""The tracker on detections with gaps in time: ByteTrack associates, seconds and missed frames
decide when a track is forgotten (synthetic boxes: no model, no video)."""
from __future__ import annotations

import numpy as np

from detectors.detector_config import TrackerConfig
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


def _scene(colour: tuple[int, int, int]) -> np.ndarray:
    """A grey street with a person-sized patch of `colour` (striped, so it has some texture) at BOX."""
    img = np.full((432, 768, 3), 90, np.uint8)
    x1, y1, x2, y2 = BOX
    img[y1:y2, x1:x2] = colour
    img[y1:y2:6, x1:x2] = (20, 20, 20)
    return img


def test_frames_seconds_apart_tell_the_next_visitor_at_the_same_spot_from_the_last():
    # Under load frames come 6 s apart: one visitor leaves and the next sits down at the same spot
    # between two analysed frames, so no frame misses anyone. Position alone would make them one
    # track (one stay); after `track_buffer_s` without a sighting the newcomer must look the same.
    for later, same in [((40, 40, 200), False), ((200, 60, 30), True)]:
        tracker = Tracker(TrackerConfig(), analysis_fps=1)
        first = None
        for t in range(0, 13, 6):  # 0, 6, 12: the first visitor, seen every 6 s
            first = tracker.update(dets(BOX), float(t), _scene((200, 60, 30)))[0].id
        after = tracker.update(dets(BOX), 18.0, _scene(later))
        assert [tr.id == first for tr in after] == [same], (later, [tr.id for tr in after], first)
