"""Camera faults as incidents: a camera offline too long, and each video-quality check.

Camera availability is itself what operators are judged on, so a fault goes through the same
lifecycle and outbox as any incident, routed by its category to maintenance. Each quality check
(no signal, frozen, blur, occlusion, brightness, colour cast, view moved) is its own incident.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from detectors.lifecycle import IncidentChange, Lifecycle
from detectors.quality import CHECKS, QualityConfig, QualityMonitor
from detectors.rules.condition import Condition

OFFLINE_RULE = "camera-offline"


def quality_rule(check: str) -> str:
    return f"quality:{check}"


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offline_after_s: float = Field(60.0, gt=0, description="A camera down (offline or stalled) this long opens a camera-fault incident.")
    category: str = Field("maintenance.camera-fault", description="Category of camera-fault incidents (routed to maintenance).")
    update_interval_s: float = Field(600.0, gt=0, description="At most one `updated` event per fault per this many seconds.")


class CameraHealth:
    def __init__(self, camera_id: str, cfg: HealthConfig, quality: QualityConfig) -> None:
        self.cfg = cfg
        self.monitor = QualityMonitor(quality) if quality.enabled else None
        # The monitor and the offline timer already debounce: clear as soon as the fault is gone.
        life = dict(update_interval_s=cfg.update_interval_s, grace_s=0.0)
        self._offline = Lifecycle(camera_id, OFFLINE_RULE, **life)
        self._quality = {c: Lifecycle(camera_id, quality_rule(c), **life) for c in CHECKS}

    @property
    def lifecycles(self) -> dict[str, Lifecycle]:
        return {OFFLINE_RULE: self._offline} | {quality_rule(c): lc for c, lc in self._quality.items()}

    @property
    def durations(self) -> dict[str, float]:
        """Seconds each check needs to report a fault it has just started to watch."""
        quality = self.monitor.cfg.for_s if self.monitor is not None else 0.0
        return {OFFLINE_RULE: self.cfg.offline_after_s} | {quality_rule(c): quality for c in CHECKS}

    @property
    def rule_ids(self) -> list[str]:
        return list(self.lifecycles)

    def on_frame(self, image: np.ndarray, now: float) -> list[IncidentChange]:
        if self.monitor is None:
            return []
        active = self.monitor.update(image, now)
        changes: list[IncidentChange] = []
        for check, lifecycle in self._quality.items():
            since = self.monitor.since(check) or now
            conds = [Condition(quality_rule(check), None, since, 1.0, None)] if active.get(check) else []
            changes += lifecycle.step(conds, now)
        return changes

    def on_status(self, down_since: float | None, now: float) -> list[IncidentChange]:
        """Called periodically with the camera's state, frames or not (a dead camera sends none)."""
        down = down_since is not None and now - down_since >= self.cfg.offline_after_s
        conds = [Condition(OFFLINE_RULE, None, down_since, 1.0, None)] if down else []
        return self._offline.step(conds, now)
