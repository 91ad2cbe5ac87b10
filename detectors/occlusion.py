"""Stationary objects keep their identity through occlusions.

A parked car hidden by a passing bus, a bag behind a crowd, a person at a stall behind passers-by:
the detector loses them for seconds to minutes, and ByteTrack (which matches by box overlap
only, and forgets after `track_buffer_s`) would give them a new track when they reappear, so a
rule would count their stay again from zero and the incident would clear and open twice.

Here a track that stood still (`hold_min_still_s`) where it vanished is *held*: kept at the
place it stood, with an appearance signature (colour histograms of the upper and lower half of
its box, taken while it stood unobstructed), for `hold_s`. A new track that stands at that
place (box IoU >= `hold_iou`) is decided on at once:

- it looks the same (histogram similarity >= `hold_similarity`): it is the held object back,
  and takes the old track's id and history (the rules see one track with a gap);
- it looks different and stands still there: the held object is gone (a newcomer took its
  place); the hold ends and the newcomer keeps its own identity.

A held object that never comes back is let go after `hold_s`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from detectors.boxes import Box, covered, iou, overlap_of_smaller

if TYPE_CHECKING:
    from detectors.tracking import Track

# A young track (seen for less than this) may still turn out to be a held object back: the first
# boxes of an object coming out from behind an occluder are often partial and do not match yet.
YOUNG_S = 5.0
# A newcomer must have stood at the place this long before it displaces the held object.
DISPLACE_AFTER_S = 1.0
# A box steady between two sightings (IoU) gives a signature; a moving or half-covered one does not.
STEADY_IOU = 0.7
SIGNATURE_EVERY_S = 0.5


def signature(image: np.ndarray, box: Box) -> np.ndarray | None:
    """HSV histograms (8x4x4 bins, L1-normalised) of the upper and lower half of the box's inner
    part (10 % trimmed on each side: less background). None for a box too small to say anything."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * 0.1, (y2 - y1) * 0.1
    c = image[max(0, int((y1 + dy) * h)):min(h, int((y2 - dy) * h)), max(0, int((x1 + dx) * w)):min(w, int((x2 - dx) * w))]
    if c.shape[0] < 8 or c.shape[1] < 4:
        return None
    hsv = cv2.cvtColor(cv2.resize(c, (24, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
    halves = []
    for part in (hsv[:24], hsv[24:]):
        hist = cv2.calcHist([part], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
        halves.append(hist / max(float(hist.sum()), 1.0))
    return np.stack(halves).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of the two signatures, averaged over the halves: 1 is identical."""
    return float(np.sqrt(a * b).sum(axis=1).mean())


@dataclass
class Held:
    track: Track
    box: Box  # where it stood
    since: float  # when it was put on hold
    displaced: bool = False  # someone else stands there now


def stationary_box(track: Track, min_still_s: float, min_iou: float) -> Box | None:
    """The box where the track stood still for `min_still_s` when it was last seen, or None.

    The reference is the last sighting or one within the second before it, provided every
    sighting after the reference lies mostly inside the reference box: the last boxes of an
    object being covered are partial views of it, not a move.
    """
    pts = track.points
    if not pts:
        return None
    last_t = pts[-1].t
    n = len(pts)
    for k in range(n - 1, -1, -1):
        ref = pts[k]
        if ref.t < last_t - 1.0:
            break
        if any(overlap_of_smaller(pts[j].box, ref.box) < 0.7 for j in range(k + 1, n)):
            continue
        since = ref.t
        for j in range(k - 1, -1, -1):
            if iou(pts[j].box, ref.box) < min_iou:
                break
            since = pts[j].t
            if ref.t - since >= min_still_s:
                return ref.box
    return None


class Holds:
    """The held objects of one camera, and the decisions about tracks that appear where they stood."""

    def __init__(self, hold_s: float, min_iou: float, min_similarity: float) -> None:
        self.hold_s = hold_s
        self.min_iou = min_iou
        self.min_similarity = min_similarity
        self.held: dict[int, Held] = {}
        self.reassociated = 0  # how many times a held object came back (for tests and logs)
        self.displaced = 0

    def hold(self, track: Track, box, t: float) -> None:
        self.held[track.id] = Held(track, box, t)

    def remember(self, image: np.ndarray, seen: list[Track], t: float) -> None:
        """Take a signature of each track seen now that stands steady and unobstructed."""
        for tr in seen:
            if len(tr.points) < 2 or (tr.sigs and t - tr.sigs[-1][0] < SIGNATURE_EVERY_S):
                continue
            box = tr.last.box
            if iou(tr.points[-2].box, box) < STEADY_IOU:
                continue
            if any(o is not tr and covered(box, o.last.box) > 0.2 for o in seen):
                continue  # partly behind (or in front of) another object: not its own look
            sig = signature(image, box)
            if sig is not None:
                tr.sigs.append((t, sig))

    def decide(self, image: np.ndarray | None, seen: list[Track], t: float) -> dict[int, Track]:
        """Tracks seen now that stand where a held object stood. Returns {young track id: held
        track} for those that are the held object back; ends the holds newcomers displaced."""
        back: dict[int, Track] = {}
        if not self.held or image is None:
            return back
        for tr in seen:
            if t - tr.first_seen > YOUNG_S + DISPLACE_AFTER_S:
                continue
            box = tr.last.box
            candidates = [h for h in self.held.values()
                          if h.track.label == tr.label and h.track.last.t < tr.first_seen
                          and not h.displaced and iou(box, h.box) >= self.min_iou]
            if not candidates:
                continue
            sig = signature(image, box)
            if sig is None:
                continue
            scored = [(max(similarity(sig, s) for _, s in h.track.sigs), h) for h in candidates]
            best, h = max(scored, key=lambda x: x[0])
            if best >= self.min_similarity and t - tr.first_seen <= YOUNG_S:
                back[tr.id] = h.track
                del self.held[h.track.id]
                self.reassociated += 1
            elif best < self.min_similarity and t - tr.first_seen >= DISPLACE_AFTER_S \
                    and len(tr.points) >= 2 and iou(tr.points[-2].box, box) >= STEADY_IOU:
                for _, other in scored:  # someone else stands there now: whoever stood there is gone
                    other.displaced = True
                self.displaced += 1
        return back

    def expire(self, t: float) -> list[Track]:
        """Held objects not back within `hold_s` of their last sighting, or displaced: let go."""
        gone = [h for h in self.held.values() if h.displaced or t - h.track.last.t >= self.hold_s]
        for h in gone:
            del self.held[h.track.id]
        return [h.track for h in gone]

    def tracks(self) -> list[Track]:
        return [h.track for h in self.held.values()]
