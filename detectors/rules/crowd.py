"""Crowd gathering: at least `min_count` people in a zone, most of the last `min_duration_s`."""
from __future__ import annotations

from statistics import median

from detectors.detector_config import CrowdRuleConfig
from detectors.rules.condition import Condition
from detectors.rules.scene import Scene, in_zone
from detectors.zones import Zone


def count_in_zone(zone: Zone, scene: Scene, classes: set[str], min_score: float) -> dict[float, list]:
    """For each recent analysed frame, the track points of `classes` inside the zone."""
    counts: dict[float, list] = {t: [] for t in scene.frame_times}
    for track in scene.tracks:
        if track.label not in classes or track.median_score() < min_score:
            continue
        for p in track.points:
            if p.t in counts and in_zone(zone, p):
                counts[p.t].append((track.id, p))
    return counts


def crowd(rule: CrowdRuleConfig, zone: Zone, scene: Scene) -> list[Condition]:
    window_start = scene.now - rule.min_duration_s
    if scene.start > window_start:  # not watched long enough yet
        return []
    counts = count_in_zone(zone, scene, set(rule.classes), rule.min_score)
    frames = [t for t in scene.frame_times if t >= window_start]
    if not frames:
        return []
    reached = [t for t in frames if len(counts[t]) >= rule.min_count]
    if len(reached) / len(frames) < rule.min_fraction or len(counts[frames[-1]]) < rule.min_count:
        return []
    now_pts = counts[frames[-1]]
    box = (min(p.box[0] for _, p in now_pts), min(p.box[1] for _, p in now_pts),
           max(p.box[2] for _, p in now_pts), max(p.box[3] for _, p in now_pts))
    score = median(p.score for t in reached for _, p in counts[t])
    return [Condition(rule.id, zone.name, window_start, score, box, tuple(sorted(i for i, _ in now_pts)))]
