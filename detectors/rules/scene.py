"""What every rule sees: the time, the tracks (live and recently ended), when frames were analysed,
and the scene model's static new regions (objects of any kind added to the scene)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detectors.scene_model import SceneRegion
from detectors.tracking import Track, TrackPoint, iou
from detectors.zones import Zone

# Conditions about a scene region carry this plus the region's id as their subject, so they never
# share a subject with a track.
REGION_SUBJECT = 1 << 30


@dataclass(frozen=True)
class Scene:
    now: float
    start: float  # time of the first analysed frame
    tracks: Sequence[Track]
    frame_times: Sequence[float]  # recent analysed frame times, oldest first
    regions: Sequence[SceneRegion] = ()  # static new regions (empty when the camera runs no scene model)

    def frames_since(self, t: float) -> list[float]:
        return [f for f in self.frame_times if f >= t]


def in_zone(zone: Zone, p: TrackPoint) -> bool:
    return zone.contains(*p.anchor)


def near(a: tuple[float, float, float, float], b: tuple[float, float, float, float], margin: float) -> bool:
    """Boxes that intersect once `a` is grown by `margin` on every side (normalised units)."""
    return not (a[2] + margin < b[0] or b[2] < a[0] - margin or a[3] + margin < b[1] or b[3] < a[1] - margin)


def is_tracked_object(tracks: Sequence[Track], classes: Sequence[str], box, since: float, min_iou: float) -> bool:
    """The region is itself one of these tracked objects standing still (a parked car, a person
    waiting): one of their boxes since `since` covers about the same area (IoU >= `min_iou`)."""
    return any(p.t >= since and iou(p.box, box) >= min_iou for t in tracks if t.label in classes for p in t.points)


def inside_still_object(tracks: Sequence[Track], classes: Sequence[str], box, appeared_at: float, now: float,
                        min_iou: float, cover: float = 0.6) -> bool:
    """The region lies inside a person or vehicle that stands there now and stood there before the
    region appeared (a change on a parked car, under someone standing still): theirs, not left."""
    ix = lambda a, b: max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))  # noqa: E731
    area = (box[2] - box[0]) * (box[3] - box[1])
    return area > 0 and any(
        t.label in classes and now - t.last.t <= 2.0 and ix(box, t.last.box) / area >= cover
        and t.still_since(min_iou) <= appeared_at for t in tracks)
