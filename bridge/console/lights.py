"""The light an open incident shows on the console (green, yellow, red): one small function.

For now the light comes from the incident's age against its category's time limit where the
catalogue gives one, else from its status. The work-order clocks (acceptance, handling,
verification, from the platform's feedback) replace this later; keep every colouring here.
"""
from __future__ import annotations

from typing import Literal

Light = Literal["green", "yellow", "red"]

#: Without a time limit: a new incident is green, one still there at its updates is yellow,
#: one a verify request found still present is red.
_BY_STATUS: dict[str, Light] = {"opened": "green", "updated": "yellow"}


def light_of(status: str, age_s: float, limit_s: float | None,
             still_present: bool | None = None) -> tuple[Light, str]:
    """(light, why) for an open incident whose latest event has `status`, opened `age_s` ago."""
    if limit_s is not None:
        if age_s >= limit_s:
            return "red", f"open {age_s:.0f} s, past its {limit_s:.0f} s limit"
        if age_s >= limit_s / 2:
            return "yellow", f"open {age_s:.0f} s, over half of its {limit_s:.0f} s limit"
        return "green", f"open {age_s:.0f} s of its {limit_s:.0f} s limit"
    if status == "verified":
        return ("red", "still present when verified") if still_present else ("yellow", "verified, not confirmed present")
    light = _BY_STATUS.get(status)
    if light is None:
        raise ValueError(f"status {status!r} is not an open incident's status (opened, updated, verified)")
    return light, f"status {status} (the category has no time limit)"
