"""Dwell in zone: an object of given classes whose bottom-centre stays in a zone for N seconds."""
from __future__ import annotations

from collections.abc import Iterable

from detectors.detector_config import DwellRuleConfig
from detectors.rules.condition import Condition
from detectors.rules.scene import Scene
from detectors.tracking import Track
from detectors.zones import Zone


def time_entered(track: Track, zone: Zone, exit_tolerance_s: float, now: float) -> float | None:
    """When the track's current stay in the zone began, or None if it is not in the zone now.

    Walks the history backwards. Excursions outside the zone shorter than `exit_tolerance_s`
    (a box jittering over the edge) do not end a stay; missing frames (the tracker bridged them)
    neither; nor does an excursion seen in one analysed frame alone: when frames come seconds
    apart under load, one frame whose box bottom jittered over the zone's edge would otherwise
    count as an excursion as long as the gap to the next frame.
    """
    if not track.points or now - track.last.t > exit_tolerance_s:
        return None
    entered: float | None = None
    outside_since: float | None = None
    outside_n = 0  # frames in the excursion being walked
    for p in reversed(track.points):
        if zone.contains(*p.anchor):
            entered, outside_since, outside_n = p.t, None, 0
        else:
            if entered is None:
                # Newest points outside: still "in" only within the tolerance, counted from now.
                if now - p.t > exit_tolerance_s:
                    return None
                continue
            outside_since, outside_n = p.t, outside_n + 1
            if entered - outside_since > exit_tolerance_s and (outside_n > 1 or exit_tolerance_s == 0):
                break
    return entered


def dwell(rule: DwellRuleConfig, zone: Zone, scene: Scene) -> list[Condition]:
    """One condition for the zone if any qualifying track has stayed `min_dwell_s`; the longest wins."""
    return longest_stay(rule, zone, scene.tracks, scene.now)


def longest_stay(rule: DwellRuleConfig, zone: Zone, tracks: Iterable[Track], now: float) -> list[Condition]:
    classes = set(rule.classes)
    best: tuple[float, Track] | None = None
    qualifying: list[int] = []
    for track in tracks:
        if track.label not in classes:
            continue
        entered = time_entered(track, zone, rule.exit_tolerance_s, now)
        if entered is None or now - entered < rule.min_dwell_s:
            continue
        if track.median_score(since=entered) < rule.min_score:
            continue
        qualifying.append(track.id)
        if best is None or entered < best[0]:
            best = (entered, track)
    if best is None:
        return []
    entered, track = best
    return [Condition(rule.id, zone.name, entered, track.median_score(since=entered), track.last.box, tuple(sorted(qualifying)))]
