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
from detectors.rules.condition import Condition
from detectors.sensor_rule_config import (
    AlarmRuleConfig,
    BatteryRuleConfig,
    OfflineRuleConfig,
    RateRuleConfig,
    SensorRuleConfig,
    ThresholdRuleConfig,
)
from ingest.sensor_decode import Reading


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

    def adopt(self, sensor_id: str, incidents: list[dict], now: float, confirm_s: float) -> list[dict]:
        """Carry on the incidents a sensor had open before a restart (`bridge.resume`); returns
        those whose rule is no longer configured. A level rule (threshold, alarm, battery) gets its
        hysteresis back, so a value still beyond its clear level keeps the incident open under its
        id; any rule seen holding again within `confirm_s` plus its own duration carries it on,
        and an incident not seen again within that clears with a reason."""
        run = self._runs.get(sensor_id)
        by_id = {rr.cfg.id: rr for rr in run.value_rules + run.offline_rules} if run is not None else {}
        gone = []
        for inc in incidents:
            rr = by_id.get(inc["rule"])
            if rr is None:
                gone.append(inc)
                continue
            opened_at = float(inc["opened_at"])
            if isinstance(rr.state, rules.LevelState) and not isinstance(rr.cfg, OfflineRuleConfig):
                rr.state = rules.LevelState(opened_at, True)
            wait = confirm_s + next((float(getattr(rr.cfg, f)) for f in ("min_duration_s", "window_s", "heartbeat_s")
                                     if hasattr(rr.cfg, f)), 0.0)
            cond = Condition(rr.cfg.id, None, opened_at, float(inc.get("score", 1.0)), None)
            rr.lifecycle.adopt(inc["incident_id"], None, None, opened_at, cond, now, wait, wait, "restart")
        return gone

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
