"""Sensor rules as pure functions: (parameters, previous state, value, time) -> (state, condition).

State is an immutable value the caller keeps per sensor and rule; no rule reads a clock, so the
same readings always give the same conditions. Times are seconds. A returned condition means the
rule holds now; `detectors.lifecycle.Lifecycle` turns that into opened / updated / cleared.
"""
from __future__ import annotations

from dataclasses import dataclass

from detectors.rules.condition import Condition
from detectors.sensor_rule_config import (
    AlarmRuleConfig,
    BatteryRuleConfig,
    OfflineRuleConfig,
    RateRuleConfig,
    ThresholdRuleConfig,
)


@dataclass(frozen=True, slots=True)
class LevelState:
    """Threshold, alarm and battery rules: since when the trigger holds, and whether it fired."""

    since: float | None = None
    active: bool = False


@dataclass(frozen=True, slots=True)
class RateState:
    window: tuple[tuple[float, float], ...] = ()  # (time, value), oldest first, spanning window_s
    since: float | None = None


def _cond(rule_id: str, since: float, score: float = 1.0) -> Condition:
    return Condition(rule_id=rule_id, zone=None, since=since, score=score, bbox=None)


def _level(rule_id: str, st: LevelState, triggered: bool, cleared: bool, min_duration_s: float,
           t: float) -> tuple[LevelState, Condition | None]:
    """Shared hysteresis: fire after the trigger held `min_duration_s`; once fired, hold until `cleared`."""
    if st.active:
        if cleared:
            return LevelState(), None
        return st, _cond(rule_id, st.since if st.since is not None else t)
    if not triggered:
        return (LevelState() if st.since is not None else st), None
    since = t if st.since is None else st.since
    if t - since >= min_duration_s:
        return LevelState(since, True), _cond(rule_id, since)
    return LevelState(since, False), None


def threshold(p: ThresholdRuleConfig, st: LevelState, value: float, t: float) -> tuple[LevelState, Condition | None]:
    if p.above is not None:
        return _level(p.id, st, value >= p.above, value < p.clear_at, p.min_duration_s, t)
    return _level(p.id, st, value <= p.below, value > p.clear_at, p.min_duration_s, t)  # type: ignore[operator]


def alarm(p: AlarmRuleConfig, st: LevelState, value: bool, t: float) -> tuple[LevelState, Condition | None]:
    return _level(p.id, st, bool(value), not value, p.min_duration_s, t)


def low_battery(p: BatteryRuleConfig, st: LevelState, value: float, t: float) -> tuple[LevelState, Condition | None]:
    return _level(p.id, st, value <= p.below, value > p.clear_at, 0.0, t)


def rate(p: RateRuleConfig, st: RateState, value: float, t: float) -> tuple[RateState, Condition | None]:
    """Holds while the change from the oldest reading inside the window reaches `change`.

    Readings come in time order (the engine never lets a sensor's time go back), so the ones that
    left the window are a prefix: drop it and copy the rest in one slice, not one by one, because
    this runs for every reading.
    """
    old = st.window
    i = 0
    while i < len(old) and t - old[i][0] > p.window_s:
        i += 1
    window = old[i:] + ((t, value),)
    delta = value - window[0][1]
    fired = delta >= p.change if p.change > 0 else delta <= p.change
    if not fired:
        return RateState(window, None), None
    since = t if st.since is None else st.since
    return RateState(window, since), _cond(p.id, since)


def offline(p: OfflineRuleConfig, last_seen: float, now: float) -> Condition | None:
    """Holds once nothing was heard for more than the heartbeat interval."""
    if now - last_seen > p.heartbeat_s:
        return _cond(p.id, last_seen + p.heartbeat_s)
    return None


__all__ = ["LevelState", "RateState", "alarm", "low_battery", "offline", "rate", "threshold"]
