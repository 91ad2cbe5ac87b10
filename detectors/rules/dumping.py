"""Illegal dumping: a new object that appears next to a person or vehicle and is left behind.

Two sources of objects, the same test for both (brought by a carrier, then left alone for
`min_left_s`):
- tracks of the detector's droppable `object_classes` (bottle, suitcase, ...);
- with `scene_regions`, static new regions of the camera's scene model: objects of any kind
  (a black bin bag at night, a bulk bag, boxes), that a carrier was at around the moment the
  region appeared. A region that is itself a person or vehicle standing still is not one.
Each dumped object is its own incident (the condition's `subject` is its track or region), so
two bags left a minute apart are two work orders; a region and a detection of the same object
are made one by the analyzer (`detectors.rules.identity`).
"""
from __future__ import annotations

from detectors.detector_config import DumpingRuleConfig
from detectors.rules.condition import Condition
from detectors.rules.scene import REGION_SUBJECT, Scene, in_zone, inside_still_object, is_tracked_object, near
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


def arrivals(obj: Track, gap_s: float) -> list[float]:
    """When the object may have arrived: when it was first seen, and, if it was out of sight for
    longer than `gap_s` since, when it was seen again. A track kept through a gap (an occlusion,
    or an object taken away and one like it put back in its place) is one identity to the tracker;
    for dumping the put-back is an arrival of its own."""
    out = [obj.first_seen]
    prev = None
    for p in obj.points:
        if prev is not None and p.t - prev > gap_s:
            out[1:] = [p.t]  # only the latest reappearance matters
        prev = p.t
    return out


def dumping(rule: DumpingRuleConfig, zone: Zone, scene: Scene) -> list[Condition]:
    now = scene.now
    carriers = [t for t in scene.tracks if t.label in rule.carrier_classes]
    out = []
    for obj in scene.tracks:
        if obj.label not in rule.object_classes:
            continue
        if now - obj.last.t > 1.0 or not in_zone(zone, obj.last):
            continue  # gone, or not in the zone now
        if obj.median_score() < rule.min_score:
            continue
        box = obj.last.box
        # The first arrival that passes: a dumped bag hidden by a bus for a while keeps the arrival
        # it was reported with; a bottle put back where it had been taken from arrives again.
        for arrived in arrivals(obj, rule.carrier_window_s):
            if arrived < scene.start + rule.warmup_s:
                continue  # already there while the camera started watching: scenery
            # Left standing since its arrival: a moving object is being carried, not dumped.
            if obj.still_since(rule.stationary_iou) > arrived + rule.carrier_window_s:
                continue
            # Brought by someone: a carrier was next to it around the moment it appeared ...
            window = (arrived - rule.carrier_window_s, arrived + rule.carrier_window_s)
            if not _carrier_near(carriers, box, *window, rule.near_margin):
                continue
            # ... and then left alone for `min_left_s`.
            if left_at(carriers, box, arrived, now, rule.min_left_s, rule.near_margin) is None:
                continue
            out.append(Condition(rule.id, zone.name, arrived, obj.median_score(), box, (obj.id,), subject=obj.id))
            break
    if rule.scene_regions:
        out += _regions(rule, zone, scene, carriers)
    return out


def _regions(rule: DumpingRuleConfig, zone: Zone, scene: Scene, carriers: list[Track]) -> list[Condition]:
    now, out = scene.now, []
    for reg in scene.regions:
        if not rule.min_region_area <= reg.area <= rule.max_region_area or not zone.contains(*reg.anchor):
            continue
        if reg.appeared_at < scene.start + rule.warmup_s:
            continue
        window = (reg.appeared_at - rule.carrier_window_s, reg.appeared_at + rule.carrier_window_s)
        if is_tracked_object(scene.tracks, rule.self_classes, reg.box, window[0], rule.self_iou):
            continue  # a car that parked, a person waiting: the region is them
        if inside_still_object(scene.tracks, rule.self_classes, reg.box, reg.appeared_at, now, rule.stationary_iou):
            continue  # a change on a parked vehicle, under someone standing still
        if not _carrier_near(carriers, reg.box, *window, rule.near_margin):
            continue  # nobody brought it: light, a shadow that stayed, or scenery
        if left_at(carriers, reg.box, reg.appeared_at, now, rule.min_left_s, rule.near_margin) is None:
            continue
        out.append(Condition(rule.id, zone.name, reg.appeared_at, reg.score, reg.box, (),
                             subject=REGION_SUBJECT + reg.id))
    return out
