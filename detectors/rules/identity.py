"""One object, one subject: conditions about the same object from different sources (a detector
track and a scene region, or a track that was lost behind a bus and came back with a new id)
are reported under the subject the object was first reported with.

Stateful (it remembers where each subject was), so it lives in the analyzer, after the pure rule.
"""
from __future__ import annotations

from dataclasses import replace

from detectors.rules.condition import Condition
from detectors.tracking import iou

Box = tuple[float, float, float, float]


def same_place(a: Box | None, b: Box | None, min_iou: float = 0.3, min_cover: float = 0.7) -> bool:
    """Boxes of one object: they overlap by `min_iou`, or the smaller lies mostly in the larger."""
    if a is None or b is None:
        return False
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iou(a, b) >= min_iou or (smaller > 0 and ix * iy / smaller >= min_cover)


class SubjectMerger:
    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._alias: dict[int, int] = {}  # a source's subject -> the object's subject
        self._seen: dict[tuple[str | None, int], tuple[Box | None, float]] = {}  # (zone, subject) -> last box, time

    def __call__(self, conditions: list[Condition], now: float) -> list[Condition]:
        out: dict[tuple[str | None, int | None], Condition] = {}
        for c in sorted(conditions, key=lambda c: (c.since, c.subject or 0)):
            if c.subject is None:
                out[(c.zone, None)] = c
                continue
            subject = self._alias.get(c.subject)
            if subject is None or (c.zone, subject) not in self._seen:
                subject = next((s for (z, s), (box, _) in self._seen.items() if z == c.zone and same_place(box, c.bbox)),
                               None)
                if subject is None:  # new this frame: maybe another source's view of one already in `out`
                    subject = next((k[1] for k, o in out.items() if k[0] == c.zone and k[1] is not None
                                    and same_place(o.bbox, c.bbox)), c.subject)
                self._alias[c.subject] = subject
            key = (c.zone, subject)
            prev = out.get(key)
            if prev is None:
                out[key] = replace(c, subject=subject)
            else:  # two views of one object: the better evidence, the earlier start
                best = c if c.score > prev.score else prev
                out[key] = replace(best, subject=subject, since=min(c.since, prev.since),
                                   track_ids=tuple(sorted({*prev.track_ids, *c.track_ids})))
        for (zone, subject), c in out.items():
            if subject is not None:
                self._seen[(zone, subject)] = (c.bbox, now)
        for key in [k for k, (_, t) in self._seen.items() if now - t > self.hold_s]:
            del self._seen[key]
        live = {s for _, s in self._seen}
        self._alias = {k: v for k, v in self._alias.items() if v in live}
        return list(out.values())
