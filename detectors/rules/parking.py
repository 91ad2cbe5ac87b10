"""Illegal parking: a vehicle that stands still inside a no-parking zone for `min_stationary_s`."""
from __future__ import annotations

from detectors.detector_config import ParkingRuleConfig
from detectors.rules.condition import Condition
from detectors.rules.dwell import time_entered
from detectors.rules.scene import Scene
from detectors.zones import Zone


def parking(rule: ParkingRuleConfig, zone: Zone, scene: Scene) -> list[Condition]:
    now, classes = scene.now, set(rule.classes)
    held: list[tuple[float, int, float, tuple]] = []
    for track in scene.tracks:
        if track.label not in classes:
            continue
        entered = time_entered(track, zone, rule.exit_tolerance_s, now)
        if entered is None:
            continue
        # Still = overlapping its current box; a car creeping through a queue is not parked.
        since = max(entered, track.still_since(rule.stationary_iou))
        if now - since < rule.min_stationary_s:
            continue
        score = track.median_score(since=since)
        if score >= rule.min_score:
            held.append((since, track.id, score, track.last.box))
    if not held:
        return []
    since, _, score, box = min(held)
    return [Condition(rule.id, zone.name, since, score, box, tuple(sorted(h[1] for h in held)))]
