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

Hidden, or gone? When a stationary object vanishes, the ring around its box tells: an occluder
in front of it (a bus, a crowd, anything large) changes the surroundings too, while an object
that left (walked or drove away between two analysed frames) leaves them as they were and only
the inside changes. So a vanished object whose surroundings look as they did at its last
unobstructed sighting, and whose box no longer looks like it, has left: it is not held (and an
object held whose surroundings clear again without it reappearing is let go). A held object that
never comes back is let go after `hold_s`.
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
# The ring around a box: this much of its width and height on each side.
RING = 0.5
# Correlation of the ring's grey levels from which the surroundings are unchanged (a camera's
# auto exposure shifts and scales them when a large dark object leaves: correlation ignores that).
RING_SAME = 0.9


def signature(image: np.ndarray, box: Box) -> np.ndarray | None:
    """HSV histograms (8x4x4 bins, L1-normalised) of the upper and lower half of the box's inner
    part (10 % trimmed on each side: less background). None for a box too small to say anything."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * 0.1, (y2 - y1) * 0.1
    c = image[max(0, int((y1 + dy) * h)):min(h, int((y2 - dy) * h)), max(0, int((x1 + dx) * w)):min(w, int((x2 - dx) * w))]
    if c.shape[0] < 8 or c.shape[1] < 4:
        return None
    hsv = cv2.cvtColor(_shrink(c, 24, 48), cv2.COLOR_BGR2HSV)
    halves = []
    for part in (hsv[:24], hsv[24:]):
        hist = cv2.calcHist([part], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
        halves.append(hist / max(float(hist.sum()), 1.0))
    return np.stack(halves).astype(np.float32)


def _shrink(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """`img` resized to w x h by area averaging, from a 2x-per-side subsample: resizing the whole
    crop costs milliseconds on a busy CPU (OpenCV's thread pool), this a few microseconds."""
    ys = np.linspace(0, img.shape[0] - 1, min(img.shape[0], 2 * h)).astype(np.intp)
    xs = np.linspace(0, img.shape[1] - 1, min(img.shape[1], 2 * w)).astype(np.intp)
    return cv2.resize(np.ascontiguousarray(img[ys][:, xs]), (w, h), interpolation=cv2.INTER_AREA)


def surroundings(image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The box grown by RING on each side, as a 32x32 grey thumbnail, and the mask of its ring."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    gx, gy = (x2 - x1) * RING, (y2 - y1) * RING
    ex1, ey1 = max(0, int((x1 - gx) * w)), max(0, int((y1 - gy) * h))
    ex2, ey2 = min(w, int((x2 + gx) * w)), min(h, int((y2 + gy) * h))
    crop = image[ey1:max(ey2, ey1 + 1), ex1:max(ex2, ex1 + 1)]
    grey = cv2.cvtColor(_shrink(crop, 32, 32), cv2.COLOR_BGR2GRAY)
    mask = np.ones((32, 32), bool)
    sx, sy = 32 / max(1, ex2 - ex1), 32 / max(1, ey2 - ey1)
    mask[max(0, int((y1 * h - ey1) * sy)):int(np.ceil((y2 * h - ey1) * sy)),
         max(0, int((x1 * w - ex1) * sx)):int(np.ceil((x2 * w - ex1) * sx))] = False
    return grey.astype(np.float32), mask


def left_its_place(image: np.ndarray, track: Track, min_similarity: float) -> bool:
    """True when the surroundings of where the track last stood unobstructed look as they did
    then and its box no longer looks like it: the object has gone, nothing hides it."""
    if track.ring is None or not track.sigs:
        return False
    box, before = track.ring
    now, mask = surroundings(image, box)
    if not mask.any() or ring_likeness(now[mask], before[mask]) < RING_SAME:
        return False  # something large stands in front of it: not known
    sig = signature(image, box)
    return sig is not None and max(similarity(sig, s) for _, s in track.sigs) < min_similarity


def ring_likeness(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation coefficient of two sets of grey levels; 1 for a flat ring that stayed flat."""
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if den < 1e-6 * a.size:
        return 1.0 if float(np.abs(a - b).mean()) < 4.0 else 0.0
    return float((a * b).sum()) / den


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of the two signatures, averaged over the halves: 1 is identical."""
    return float(np.sqrt(a * b).sum(axis=1).mean())


@dataclass
class Held:
    track: Track
    box: Box  # where it stood
    since: float  # when it was put on hold
    displaced: bool = False  # someone else stands there now
    clear: int = 0  # analysed frames in a row its place was seen clear (it left while hidden)


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
                tr.ring = (box, surroundings(image, box)[0])

    def decide(self, image: np.ndarray | None, seen: list[Track], t: float) -> dict[int, Track]:
        """Tracks seen now that stand where a held object stood. Returns {young track id: held
        track} for those that are the held object back; ends the holds newcomers displaced."""
        back: dict[int, Track] = {}
        if not self.held or image is None:
            return back
        for tr in seen:
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

    def expire(self, t: float, image: np.ndarray | None, min_frames: int = 2) -> list[Track]:
        """Held objects to let go: not back within `hold_s` of their last sighting, displaced by a
        newcomer, or their place seen clear without them in `min_frames` analysed frames in a row
        (two: one frame in which a passer-by covers the object but not its surroundings is not enough)."""
        if image is not None:
            for h in self.held.values():
                h.clear = h.clear + 1 if left_its_place(image, h.track, self.min_similarity) else 0
        gone = [h for h in self.held.values()
                if h.displaced or h.clear >= min_frames or t - h.track.last.t >= self.hold_s]
        for h in gone:
            del self.held[h.track.id]
        return [h.track for h in gone]

    def tracks(self) -> list[Track]:
        return [h.track for h in self.held.values()]
