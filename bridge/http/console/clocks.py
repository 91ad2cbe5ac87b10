"""The loop's clocks: which step an incident's work order is in, how long that step may take, its light.

Steps (each with its limit from `ClockLimits`, the city's `api.clocks.limits` over the catalogue's):

- **acceptance**: from the incident's report until the platform accepts its work order
  (`accepted`; a later state such as `dispatched` also ends it);
- **handling**: from acceptance until `handled`; a `returned` work order (sent back for rework)
  starts handling again from the return;
- **verification**: from `handled` until `verified`;
- **done**: `verified` or `closed`; a false alarm (an operator's review) stops every clock.

The light of a running step is green for the first `yellow_at` of its limit, yellow until the
limit, red past it (`bridge.http.console.lights.light_for`). A finished incident is green when every
step kept its limit, red when one did not. A category with no limits at all keeps the older
light: its `time_limit_s` against the incident's age, else the incident's status.
Everything here is pure: `now` comes in as an argument (tests and "as at" views set it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bridge.events.catalogue import Catalogue, ClockLimits
from bridge.bridge_config import ClocksConfig
from bridge.http.console.lights import Light, light_for, light_of

WorkOrderState = Literal["accepted", "dispatched", "handled", "verified", "closed", "returned"]
Step = Literal["acceptance", "handling", "verification", "done"]
Verdict = Literal["on_time", "late", "pending"]

_LIMIT = {"acceptance": "accept_s", "handling": "handle_s", "verification": "verify_s"}
_NEXT: dict[str, Step] = {"accepted": "handling", "dispatched": "handling", "returned": "handling",
                          "handled": "verification", "verified": "done", "closed": "done"}


@dataclass(frozen=True)
class Clock:
    light: Light
    why: str
    step: Step | None  # None: the category has no step limits (the older light)
    work_order: str | None  # the latest work-order state, if any
    due_at: float | None  # Unix time the running step's limit ends
    overdue: bool
    verdict: Verdict  # for on-time rates: every step within its limit (on_time), one past it (late)


def limits_of(code: str, catalogue: Catalogue | None, config: ClocksConfig) -> ClockLimits | None:
    if code in config.limits:
        return config.limits[code]
    entry = catalogue.by_code.get(code) if catalogue is not None else None
    return entry.limits if entry is not None else None


def clock(*, opened_at: float, now: float, limits: ClockLimits | None, states: list[tuple[str, float]],
          yellow_at: float = 0.5, status: str = "opened", legacy_limit_s: float | None = None,
          still_present: bool | None = None, false_alarm: bool = False) -> Clock:
    """The clock of one incident: reported at `opened_at`, work-order `states` as (state, Unix time), oldest first."""
    wo = states[-1][0] if states else None
    if false_alarm:
        return Clock("green", "reviewed a false alarm: no clock runs", None, wo, None, False, "pending")
    if limits is None or not any((limits.accept_s, limits.handle_s, limits.verify_s)):
        return _legacy(opened_at, now, status, legacy_limit_s, still_present, wo, yellow_at)
    step: Step = "acceptance"
    since = opened_at
    late: list[str] = []
    for state, at in states:
        nxt = _NEXT[state]
        if nxt == step and state != "returned":
            continue  # dispatched after accepted: still handling, its clock runs on from acceptance
        _finish(step, since, at, limits, late)
        step, since = nxt, at
    if step == "done":
        if late:
            return Clock("red", f"{wo}, late in {', '.join(late)}", "done", wo, None, False, "late")
        return Clock("green", f"{wo}, every step within its limit", "done", wo, None, False, "on_time")
    limit = getattr(limits, _LIMIT[step])
    elapsed = max(0.0, now - since)
    if limit is None:
        light: Light = "red" if late else "green"
        why = f"{step} for {elapsed:.0f} s (not timed)" + (f"; late in {', '.join(late)}" if late else "")
        return Clock(light, why, step, wo, None, False, "late" if late else "pending")
    light = light_for(elapsed, limit, yellow_at)
    overdue = elapsed >= limit
    why = f"{step} for {elapsed:.0f} s of its {limit:.0f} s limit" + (f"; late in {', '.join(late)}" if late else "")
    if late and light != "red":
        light = "red"
    return Clock(light, why, step, wo, since + limit, overdue, "late" if (late or overdue) else "pending")


def _finish(step: Step, since: float, at: float, limits: ClockLimits, late: list[str]) -> None:
    if step == "done":
        return
    limit = getattr(limits, _LIMIT[step])
    if limit is not None and at - since > limit and step not in late:
        late.append(step)


def _legacy(opened_at: float, now: float, status: str, limit_s: float | None, still_present: bool | None,
            wo: str | None, yellow_at: float) -> Clock:
    age = max(0.0, now - opened_at)
    if status == "cleared" and limit_s is None:
        return Clock("green", "cleared (the category has no time limits)", None, wo, None, False, "pending")
    light, why = light_of("updated" if status == "cleared" else status, age, limit_s, still_present, yellow_at)
    overdue = limit_s is not None and age >= limit_s
    return Clock(light, why, None, wo, opened_at + limit_s if limit_s else None, overdue,
                 "late" if overdue else "pending")
