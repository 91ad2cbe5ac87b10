"""What every rule sees: the time, the tracks (live and recently ended), and when frames were analysed."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detectors.tracking import Track, TrackPoint
from detectors.zones import Zone


@dataclass(frozen=True)
class Scene:
    now: float
    start: float  # time of the first analysed frame
    tracks: Sequence[Track]
    frame_times: Sequence[float]  # recent analysed frame times, oldest first

    def frames_since(self, t: float) -> list[float]:
        return [f for f in self.frame_times if f >= t]


def in_zone(zone: Zone, p: TrackPoint) -> bool:
    return zone.contains(*p.anchor)


def near(a: tuple[float, float, float, float], b: tuple[float, float, float, float], margin: float) -> bool:
    """Boxes that intersect once `a` is grown by `margin` on every side (normalised units)."""
    return not (a[2] + margin < b[0] or b[2] < a[0] - margin or a[3] + margin < b[1] or b[3] < a[1] - margin)
