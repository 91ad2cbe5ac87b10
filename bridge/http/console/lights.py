"""The light an incident shows on the console and the map (green, yellow, red): every colouring is here.

`light_for` colours a running clock; `bridge.http.console.clocks` decides which clock runs (the work
order's step, from the platform's feedback) and calls it. Without any time limit the light comes
from the incident's status (`light_of`).
"""
from __future__ import annotations

from typing import Literal

Light = Literal["green", "yellow", "red"]

#: Without a time limit: a new incident is green, one still there at its updates is yellow,
#: one a verify request found still present is red.
_BY_STATUS: dict[str, Light] = {"opened": "green", "updated": "yellow"}


def light_for(elapsed_s: float, limit_s: float, yellow_at: float = 0.5) -> Light:
    """Green for the first `yellow_at` of the limit, yellow until the limit, red from it on."""
    if elapsed_s >= limit_s:
        return "red"
    return "yellow" if elapsed_s >= limit_s * yellow_at else "green"


def light_of(status: str, age_s: float, limit_s: float | None,
             still_present: bool | None = None, yellow_at: float = 0.5) -> tuple[Light, str]:
    """(light, why) for an open incident whose latest event has `status`, opened `age_s` ago."""
    if limit_s is not None:
        light = light_for(age_s, limit_s, yellow_at)
        if light == "red":
            return "red", f"open {age_s:.0f} s, past its {limit_s:.0f} s limit"
        if light == "yellow":
            return "yellow", f"open {age_s:.0f} s, over {yellow_at:.0%} of its {limit_s:.0f} s limit"
        return "green", f"open {age_s:.0f} s of its {limit_s:.0f} s limit"
    if status == "verified":
        return ("red", "still present when verified") if still_present else ("yellow", "verified, not confirmed present")
    light = _BY_STATUS.get(status)
    if light is None:
        raise ValueError(f"status {status!r} is not an open incident's status (opened, updated, verified)")
    return light, f"status {status} (the category has no time limit)"
