"""Runs every sensor's rules over its readings and keeps one lifecycle per (sensor, rule).

Value rules run on the device's clock (`Reading.time`, never going backwards per sensor), so
readings that arrive late, e.g. queued by the broker while the service was down, are judged by
when they were measured. The offline rule runs on the wall clock: it is about arrival.
`IncidentChange.camera_id` carries the sensor id (the lifecycle is shared with video).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.lifecycle import IncidentChange, Lifecycle
from detectors.rules import sensor as rules
from detectors.sensor_config import (
    AlarmRuleConfig,
    BatteryRuleConfig,
    OfflineRuleConfig,
    RateRuleConfig,
    SensorRuleConfig,
    ThresholdRuleConfig,
)
from ingest.sensors import Reading


@dataclass
class _RuleRun:
    cfg: Any
    lifecycle: Lifecycle
    state: Any


@dataclass
class _SensorRun:
    sensor_id: str
    value_rules: list[_RuleRun]
    offline_rules: list[_RuleRun]
    last_seen: float
    last_time: float = float("-inf")
    last_values: dict[str, Any] = field(default_factory=dict)
    readings: int = 0


def _initial(cfg: Any) -> Any:
    return rules.RateState() if isinstance(cfg, RateRuleConfig) else rules.LevelState()


class SensorEngine:
    def __init__(self, sensors: dict[str, list[SensorRuleConfig]], started_at: float) -> None:
        """`sensors`: sensor id -> its rules. A sensor never heard from counts as last seen at `started_at`."""
        self._runs: dict[str, _SensorRun] = {}
        for sid, cfgs in sensors.items():
            value_rules, offline_rules = [], []
            for cfg in cfgs:
                lc = Lifecycle(sid, cfg.id, update_interval_s=cfg.update_interval_s, grace_s=0.0)
                (offline_rules if isinstance(cfg, OfflineRuleConfig) else value_rules).append(_RuleRun(cfg, lc, _initial(cfg)))
            self._runs[sid] = _SensorRun(sid, value_rules, offline_rules, started_at)

    def feed(self, r: Reading) -> list[IncidentChange]:
        run = self._runs.get(r.sensor_id)
        if run is None:
            return []
        t = r.time if r.time > run.last_time else run.last_time
        run.last_time, run.last_values, run.readings = t, r.values, run.readings + 1
        if r.arrival_time > run.last_seen:
            run.last_seen = r.arrival_time
        changes: list[IncidentChange] = []
        for rr in run.value_rules:
            value = r.values.get(rr.cfg.value)
            if value is None:
                continue  # this message says nothing about this rule's value
            rr.state, cond = _evaluate(rr.cfg, rr.state, value, t)
            if cond is not None or rr.lifecycle.active:
                changes += rr.lifecycle.step([cond] if cond is not None else [], t)
        for rr in run.offline_rules:
            if rr.lifecycle.active:
                changes += rr.lifecycle.step([], r.arrival_time)
        return changes

    def tick(self, now: float) -> list[IncidentChange]:
        """Wall-clock check of every offline rule; call it every second or so."""
        changes: list[IncidentChange] = []
        for run in self._runs.values():
            for rr in run.offline_rules:
                cond = rules.offline(rr.cfg, run.last_seen, now)
                if cond is not None or rr.lifecycle.active:
                    changes += rr.lifecycle.step([cond] if cond is not None else [], now)
        return changes

    def has(self, sensor_id: str) -> bool:
        return sensor_id in self._runs

    def status(self, sensor_id: str) -> dict[str, Any]:
        run = self._runs[sensor_id]
        return {"last_seen": run.last_seen, "last_values": dict(run.last_values), "readings": run.readings,
                "active_rules": [rr.cfg.id for rr in run.value_rules + run.offline_rules if rr.lifecycle.active]}


def _evaluate(cfg: Any, state: Any, value: Any, t: float) -> tuple[Any, Any]:
    if isinstance(cfg, ThresholdRuleConfig):
        return rules.threshold(cfg, state, float(value), t)
    if isinstance(cfg, AlarmRuleConfig):
        return rules.alarm(cfg, state, bool(value), t)
    if isinstance(cfg, RateRuleConfig):
        return rules.rate(cfg, state, float(value), t)
    if isinstance(cfg, BatteryRuleConfig):
        return rules.low_battery(cfg, state, float(value), t)
    raise TypeError(f"no evaluator for rule type {type(cfg).__name__}")
