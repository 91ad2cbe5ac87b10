"""The short hash of everything that decides what a camera reports: events carry it, the tuning
bench shows it. Batching changes speed, not results: it stays out of the hash."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from detectors.detector_config import ModelConfig, TrackerConfig


def detection_hash(cam: Any, model: ModelConfig, tracker: TrackerConfig) -> str:
    """`cam`: the camera's config (duck-typed: its models, zones, rules, objects, masks, analysis fps,
    classes, and its scene model when `uses_scene`)."""
    doc = {"model": model.model_dump(exclude={"batch"}), "tracker": tracker.model_dump(),
           "custom": [m.model_dump(mode="json") for m in cam.models],
           "zones": [z.model_dump() for z in cam.zones], "rules": [r.model_dump() for r in cam.rules],
           "objects": {k: v.model_dump() for k, v in cam.objects.items()}, "masks": cam.masks.model_dump(),
           "fps": cam.analysis_fps}
    if cam.classes:
        doc["classes"] = {k: v.model_dump() for k, v in cam.classes.items()}
    if cam.uses_scene:
        doc["scene"] = cam.scene.model_dump()
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
