"""Road occupation / street vending: stall-like objects standing in a zone, with people at them."""
from __future__ import annotations

from detectors.detector_config import OccupationRuleConfig
from detectors.rules.condition import Condition
from detectors.rules.crowd import count_in_zone
from detectors.rules.dwell import time_entered
from detectors.rules.scene import Scene
from detectors.zones import Zone


def occupation(rule: OccupationRuleConfig, zone: Zone, scene: Scene) -> list[Condition]:
    now = scene.now
    window_start = now - rule.min_duration_s
    stalls = []
    for track in scene.tracks:
        if track.label not in rule.stall_classes or track.median_score() < rule.min_score:
            continue
        entered = time_entered(track, zone, 2.0, now)
        if entered is None:
            continue
        since = max(entered, track.still_since(rule.stationary_iou))
        if since <= window_start:
            stalls.append((since, track))
    if not stalls:
        return []
    if rule.min_person_fraction > 0:
        people = count_in_zone(zone, scene, set(rule.person_classes), rule.min_score)
        frames = [t for t in scene.frame_times if t >= window_start]
        staffed = sum(1 for t in frames if people[t])
        if not frames or staffed / len(frames) < rule.min_person_fraction:
            return []
    since, first = min(stalls, key=lambda s: s[0])
    boxes = [t.last.box for _, t in stalls]
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return [Condition(rule.id, zone.name, since, first.median_score(), box, tuple(sorted(t.id for _, t in stalls)))]
