"""Piles (乱堆物料 / 积存垃圾渣土): a new region of the scene that stays in a no-storage zone.

From the camera's scene model, objects of any kind; no carrier is needed (material is often
tipped from a truck that is gone long before anyone looks). A region that is itself a person or
vehicle standing still is not a pile. One incident per region: it clears when the pile is taken
away (its pixels match the reference scene again).
"""
from __future__ import annotations

from detectors.detector_config import PileRuleConfig
from detectors.rules.condition import Condition
from detectors.rules.scene import REGION_SUBJECT, Scene, is_tracked_object
from detectors.zones import Zone


def pile(rule: PileRuleConfig, zone: Zone, scene: Scene) -> list[Condition]:
    out = []
    for reg in scene.regions:
        if reg.area < rule.min_region_area or not zone.contains(*reg.anchor):
            continue
        if scene.now - reg.appeared_at < rule.min_static_s:
            continue
        if is_tracked_object(scene.tracks, rule.self_classes, reg.box, reg.appeared_at - 5.0, rule.self_iou):
            continue
        out.append(Condition(rule.id, zone.name, reg.appeared_at, reg.score, reg.box, (),
                             subject=REGION_SUBJECT + reg.id))
    return out
