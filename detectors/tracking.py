"""Tracking across sampled frames, with time in seconds.

ByteTrack (Ultralytics' implementation) does the association frame to frame. When a lost track
is forgotten is decided here, not by ByteTrack's frame-counting buffer: a track is forgotten
once it has been missing for `track_buffer_s` of real time *and* in `min_lost_frames` analysed
frames in a row. Real time, so that at 1 frame/s a departed person's track is not kept for 30 s
and handed to the next visitor; missed frames too, so that when the analysis rate falls under
load a gap between two analysed frames is not taken for the object's absence (a person whose
stay at a table spanned a 3-s gap was one stay, not two).

Since a lost track is kept for a number of frames, a newcomer at the same spot after a gap could
inherit it by position: a track found again after `track_buffer_s` of real time without a sighting
(missed frames, or just frames that far apart under load) must also look the same (appearance signature, see `detectors.occlusion`), or the newcomer gets a
track of its own. Stationary objects that vanish behind something are held at their place for
`hold_s` and take their identity back when they reappear there looking the same.

On top of it each Track keeps a bounded history of (time, box, score) that the rules read.
"""
from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import dataclass, field
from statistics import median
from types import SimpleNamespace

import numpy as np

from detectors.boxes import iou
from detectors.detector_config import TrackerConfig
from detectors.detections import Detections
from detectors.occlusion import Holds, left_its_place, signature, similarity, stationary_box


@dataclass(frozen=True, slots=True)
class TrackPoint:
    t: float
    box: tuple[float, float, float, float]  # normalised x1, y1, x2, y2
    score: float

    @property
    def anchor(self) -> tuple[float, float]:
        """Bottom-centre of the box: where a standing person or a parked car touches the ground."""
        return ((self.box[0] + self.box[2]) / 2, self.box[3])


@dataclass
class Track:
    id: int
    label: str
    points: deque[TrackPoint] = field(default_factory=deque)
    first_seen: float = 0.0
    bt_id: int = 0  # ByteTrack's id for it now (differs from `id` once it came back from a hold)
    missed: int = 0  # analysed frames in a row it was not seen in
    stood: tuple[float, float, float, float] | None = None  # missing: where it stood still, if it did
    sigs: deque = field(default_factory=lambda: deque(maxlen=10))  # (time, appearance signature)
    ring: tuple | None = None  # (box, grey thumbnail of its surroundings) at the last signature

    @property
    def last(self) -> TrackPoint:
        return self.points[-1]

    def at(self, t: float, tolerance: float) -> TrackPoint | None:
        """The point nearest to time `t`, if one lies within `tolerance` seconds."""
        best = None
        for p in reversed(self.points):
            if abs(p.t - t) <= tolerance and (best is None or abs(p.t - t) < abs(best.t - t)):
                best = p
            if p.t < t - tolerance:
                break
        return best

    def still_since(self, min_iou: float) -> float:
        """Since when the box has overlapped its current position by at least `min_iou`.

        A track is stationary over a window when this is at or before the window's start.
        """
        ref = self.last.box
        since = self.last.t
        for p in reversed(self.points):
            if iou(p.box, ref) < min_iou:
                break
            since = p.t
        return since

    def median_score(self, since: float = -math.inf) -> float:
        scores = [p.score for p in self.points if p.t >= since]
        return median(scores) if scores else 0.0


class Tracker:
    def __init__(self, cfg: TrackerConfig, analysis_fps: float) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        self.cfg = cfg
        args = SimpleNamespace(
            track_high_thresh=cfg.high_score,
            track_low_thresh=cfg.low_score,
            new_track_thresh=cfg.new_track_score,
            track_buffer=max(1, math.ceil(cfg.track_buffer_s * analysis_fps)),
            match_thresh=cfg.match_iou,
            fuse_score=True,
        )
        self._bt = BYTETracker(args)
        self._bt.max_frames_lost = sys.maxsize  # forgetting is decided in `update`, in seconds and missed frames
        self.tracks: dict[int, Track] = {}
        self._ours: dict[int, int] = {}  # ByteTrack id -> our track id
        self.holds = Holds(cfg.hold_s, cfg.hold_iou, cfg.hold_similarity)
        self._split = 1 << 40  # ids for newcomers split off a track ByteTrack gave them (above its own)
        # Tracks that ended recently: rules that look back (who carried this object in?) need them.
        self.ended: deque[Track] = deque()
        self.retain_ended_s = 120.0

    def update(self, dets: Detections, t: float, image: np.ndarray | None = None) -> list[Track]:
        """Feed one frame's detections at time `t` (and the frame, for appearance); return the
        tracks alive now (seen, or missing for less than the buffer)."""
        h, w = dets.shape
        bt = self._bt
        rows = bt.update(dets) if len(dets) or bt.tracked_stracks or bt.lost_stracks else []
        labels = dets.labels()
        seen: list[Track] = []
        for x1, y1, x2, y2, bid, score, _cls, idx in rows:
            bid = int(bid)
            tid = self._ours.setdefault(bid, bid)
            track = self.tracks.get(tid)
            label = labels[int(idx)]
            box = (x1 / w, y1 / h, x2 / w, y2 / h)
            if track is not None and t - track.last.t >= self.cfg.track_buffer_s \
                    and not self._looks_the_same(track, image, box):
                # Found again by position alone after a real-time gap, but someone else: a newcomer
                # where the other stood. The other's track ends; the newcomer starts its own. The gap
                # may be between two consecutive analysed frames (seconds apart under load): one
                # visitor leaving and the next sitting down between them must not make one track.
                del self.tracks[tid]
                self.ended.append(track)
                self._split += 1
                tid = self._ours[bid] = self._split
                track = None
            if track is None:
                track = self.tracks[tid] = Track(tid, label, first_seen=t, bt_id=bid)
            track.label, track.missed, track.stood = label, 0, None
            track.points.append(TrackPoint(t, box, float(score)))
            seen.append(track)
        if image is not None:
            self.holds.remember(image, seen, t)
        if image is not None and self.cfg.hold_s > 0:
            for young, old in self.holds.decide(image, seen, t).items():
                self._take_back(self.tracks.pop(young), old)
        horizon = t - self.cfg.history_s
        seen_ids = {tr.id for tr in seen}
        for tid in list(self.tracks):
            track = self.tracks[tid]
            while track.points and track.points[0].t < horizon:
                track.points.popleft()
            if tid in seen_ids:
                continue
            track.missed += 1
            if track.missed == 1 and track.points:
                track.stood = stationary_box(track, self.cfg.hold_min_still_s, self.cfg.hold_iou)
            if not track.points or (t - track.last.t >= self.cfg.track_buffer_s
                                    and track.missed >= self.cfg.min_lost_frames):
                del self.tracks[tid]
                self._ours.pop(track.bt_id, None)
                if track.points and track.stood is not None and track.sigs and self.cfg.hold_s > 0 \
                        and track.label not in self.cfg.no_hold_classes \
                        and image is not None and not left_its_place(image, track, self.cfg.hold_similarity):
                    self.holds.hold(track, track.stood, t)
                elif track.points:
                    self.ended.append(track)
        self.ended.extend(self.holds.expire(t, image))
        # ByteTrack keeps what we keep: lost tracks we forgot or hold must not come back by overlap alone.
        live = {tr.bt_id for tr in self.tracks.values()}
        if any(st.track_id not in live for st in bt.lost_stracks):
            for st in bt.lost_stracks:
                if st.track_id not in live:
                    st.mark_removed()
                    bt.removed_stracks.append(st)
            bt.lost_stracks = [st for st in bt.lost_stracks if st.track_id in live]
            del bt.removed_stracks[:-1000]
        while self.ended and self.ended[0].last.t < t - self.retain_ended_s:
            self.ended.popleft()
        return list(self.tracks.values())

    def _looks_the_same(self, track: Track, image: np.ndarray | None, box) -> bool:
        if image is None or not track.sigs:
            return True  # nothing to tell them apart by: trust the position
        sig = signature(image, box)
        return sig is None or max(similarity(sig, s) for _, s in track.sigs) >= self.cfg.hold_similarity

    def _take_back(self, young: Track, old: Track) -> None:
        """`young` is the held `old` back: one track, under the old id, with both histories."""
        old.points.extend(young.points)
        old.sigs.extend(young.sigs)
        old.label, old.bt_id, old.missed, old.stood = young.label, young.bt_id, 0, None
        old.ring = young.ring or old.ring
        self._ours[young.bt_id] = old.id
        self.tracks[old.id] = old

    def occluded(self) -> set[int]:
        """Ids of stationary objects out of sight now, held or about to be: an incident they are
        part of stays open (see `detectors.lifecycle`). Classes never held (people) are not: a
        person's incident ends by its rule's own `grace_s` and `min_absent_frames`."""
        missing = {tr.id for tr in self.tracks.values() if tr.missed and tr.stood is not None
                   and tr.label not in self.cfg.no_hold_classes}
        return missing | set(self.holds.held)

    def recent(self) -> list[Track]:
        """Live tracks, held ones, and those that ended within `retain_ended_s`."""
        return [*self.tracks.values(), *self.holds.tracks(), *self.ended]
