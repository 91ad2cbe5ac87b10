"""Tracking across sampled frames, with time in seconds.

ByteTrack (Ultralytics' implementation) does the association. Its buffer counts frames, so the
configured seconds are converted at the camera's analysis rate: at 1 frame/s the default of 30
frames would keep a departed person's track alive for 30 s and hand it to the next visitor.
On top of it each Track keeps a bounded history of (time, box, score) that the rules read.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from statistics import median
from types import SimpleNamespace

from detectors.config import TrackerConfig
from detectors.detections import Detections


@dataclass(frozen=True, slots=True)
class TrackPoint:
    t: float
    box: tuple[float, float, float, float]  # normalised x1, y1, x2, y2
    score: float

    @property
    def anchor(self) -> tuple[float, float]:
        """Bottom-centre of the box: where a standing person or a parked car touches the ground."""
        return ((self.box[0] + self.box[2]) / 2, self.box[3])


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    label: str
    points: deque[TrackPoint] = field(default_factory=deque)
    first_seen: float = 0.0

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
        self.tracks: dict[int, Track] = {}
        # Tracks that ended recently: rules that look back (who carried this object in?) need them.
        self.ended: deque[Track] = deque()
        self.retain_ended_s = 120.0

    def update(self, dets: Detections, t: float) -> list[Track]:
        """Feed one frame's detections at time `t`; return the tracks alive now (seen within the buffer)."""
        h, w = dets.shape
        rows = self._bt.update(dets) if len(dets) or self.tracks else []
        labels = dets.labels()
        for x1, y1, x2, y2, tid, score, _cls, idx in rows:
            tid = int(tid)
            track = self.tracks.get(tid)
            label = labels[int(idx)]
            if track is None:
                track = self.tracks[tid] = Track(tid, label, first_seen=t)
            track.label = label
            track.points.append(TrackPoint(t, (x1 / w, y1 / h, x2 / w, y2 / h), float(score)))
        horizon = t - self.cfg.history_s
        for tid in list(self.tracks):
            track = self.tracks[tid]
            while track.points and track.points[0].t < horizon:
                track.points.popleft()
            if not track.points or track.last.t < t - self.cfg.track_buffer_s:
                del self.tracks[tid]
                if track.points:
                    self.ended.append(track)
        while self.ended and self.ended[0].last.t < t - self.retain_ended_s:
            self.ended.popleft()
        return list(self.tracks.values())

    def recent(self) -> list[Track]:
        """Live tracks plus those that ended within `retain_ended_s`."""
        return [*self.tracks.values(), *self.ended]
