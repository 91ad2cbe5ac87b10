"""Incident lifecycle: conditions over time become opened / updated / cleared changes.

One active incident per (camera, zone, rule). It opens the first time its condition holds (the
rule already waited for its duration), is updated at most every `update_interval_s` carrying the
best evidence so far, and clears once the condition has been absent for `grace_s`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from detectors.rules.condition import Condition

_NAMESPACE = uuid.UUID("6f1b3c2e-5a8d-4e7f-9b0c-1d2e3f405162")


@dataclass(frozen=True, slots=True)
class IncidentChange:
    status: Literal["opened", "updated", "cleared"]
    incident_id: str
    camera_id: str
    rule_id: str
    zone: str | None
    at: float  # clock time of the change (media time in replay, Unix time live)
    opened_at: float
    condition: Condition  # for `cleared`, the last condition seen


@dataclass
class _Active:
    incident_id: str
    opened_at: float
    last_true: float
    last_emit: float
    best: Condition
    latest: Condition
    best_changed: bool = False


class Lifecycle:
    def __init__(self, camera_id: str, rule_id: str, *, update_interval_s: float, grace_s: float) -> None:
        self.camera_id = camera_id
        self.rule_id = rule_id
        self.update_interval_s = update_interval_s
        self.grace_s = grace_s
        self.active: dict[str | None, _Active] = {}

    def step(self, conditions: list[Condition], now: float) -> list[IncidentChange]:
        changes: list[IncidentChange] = []
        holding = {c.zone: c for c in conditions}
        for zone, cond in holding.items():
            act = self.active.get(zone)
            if act is None:
                iid = str(uuid.uuid5(_NAMESPACE, f"{self.camera_id}|{zone}|{self.rule_id}|{now:.3f}"))
                self.active[zone] = _Active(iid, now, now, now, cond, cond)
                changes.append(self._change("opened", self.active[zone], zone, now, cond))
                continue
            act.last_true, act.latest = now, cond
            if cond.score > act.best.score:
                act.best, act.best_changed = cond, True
            if now - act.last_emit >= self.update_interval_s:
                act.last_emit = now
                changes.append(self._change("updated", act, zone, now, act.best if act.best_changed else cond))
                act.best_changed = False
        for zone in [z for z in self.active if z not in holding]:
            act = self.active[zone]
            if now - act.last_true >= self.grace_s:
                del self.active[zone]
                changes.append(self._change("cleared", act, zone, now, act.latest))
        return changes

    def _change(self, status, act: _Active, zone, now: float, cond: Condition) -> IncidentChange:
        return IncidentChange(status, act.incident_id, self.camera_id, self.rule_id, zone, now, act.opened_at, cond)


