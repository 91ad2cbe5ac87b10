"""Box geometry in normalised image coordinates (x1, y1, x2, y2)."""
from __future__ import annotations

Box = tuple[float, float, float, float]


def _inter(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy


def area(a: Box) -> float:
    return (a[2] - a[0]) * (a[3] - a[1])


def iou(a: Box, b: Box) -> float:
    inter = _inter(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def covered(a: Box, by: Box) -> float:
    """Share of `a`'s area that `by` covers."""
    return _inter(a, by) / area(a) if area(a) > 0 else 0.0


def overlap_of_smaller(a: Box, b: Box) -> float:
    """Share of the smaller box's area that lies in the other: 1 when one holds the other."""
    small = min(area(a), area(b))
    return _inter(a, b) / small if small > 0 else 0.0
