"""Illegal dumping: a new object that appears next to a person or vehicle and is left behind.

Each dumped object is its own incident (the condition's `subject` is its track), so two bags
left a minute apart are two work orders.
"""
from __future__ import annotations

from detectors.config import DumpingRuleConfig
from detectors.rules.condition import Condition
from detectors.rules.scene import Scene, in_zone, near
from detectors.tracking import Track
from detectors.zones import Zone


def _carrier_near(carriers: list[Track], box, t0: float, t1: float, margin: float) -> bool:
    return any(t0 <= p.t <= t1 and near(box, p.box, margin) for c in carriers for p in c.points)


def left_at(carriers: list[Track], box, since: float, now: float, min_left_s: float, margin: float) -> float | None:
    """When the object had first been alone for `min_left_s` after `since`, or None if not yet.

    Once left, it stays left: a passer-by walking past a dumped bag later does not undo it.
    """
    times = sorted(p.t for c in carriers for p in c.points if since <= p.t <= now and near(box, p.box, margin))
    last = since
    for t in times:
        if t - last >= min_left_s:
            break
        last = max(last, t)
    return last + min_left_s if now - last >= min_left_s else None


def dumping(rule: DumpingRuleConfig, zone: Zone, scene: Scene) -> list[Condition]:
    now = scene.now
    carriers = [t for t in scene.tracks if t.label in rule.carrier_classes]
    out = []
    for obj in scene.tracks:
        if obj.label not in rule.object_classes or obj.first_seen < scene.start + rule.warmup_s:
            continue
        if now - obj.last.t > 1.0 or not in_zone(zone, obj.last):
            continue  # gone, or not in the zone now
        if obj.median_score() < rule.min_score:
            continue
        box = obj.last.box
        # Left standing since its arrival: a moving object is being carried, not dumped.
        if obj.still_since(rule.stationary_iou) > obj.first_seen + rule.carrier_window_s:
            continue
        # Brought by someone: a carrier was next to it around the moment it appeared ...
        window = (obj.first_seen - rule.carrier_window_s, obj.first_seen + rule.carrier_window_s)
        if not _carrier_near(carriers, box, *window, rule.near_margin):
            continue
        # ... and then left alone for `min_left_s`.
        if left_at(carriers, box, obj.first_seen, now, rule.min_left_s, rule.near_margin) is None:
            continue
        out.append(Condition(rule.id, zone.name, obj.first_seen, obj.median_score(), box, (obj.id,), subject=obj.id))
    return out
