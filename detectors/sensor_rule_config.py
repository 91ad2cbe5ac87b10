"""Config models owned by `detectors` for sensor rules. Every time is in seconds."""
from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Rule id, unique per sensor; appears in events.")
    category: str = Field(description="Catalogue category code of the incidents this rule raises.")
    update_interval_s: float = Field(300.0, gt=0, description="While an incident stays open, report an update at most this often.")


class ThresholdRuleConfig(_Rule):
    """A value beyond a level for `min_duration_s`; clears only once it is back past `clear_at` (hysteresis)."""

    type: Literal["threshold"] = Field(description="Rule type.")
    value: str = Field(description="Reading value the rule looks at, e.g. `pm10`.")
    above: float | None = Field(None, description="Trigger when the value is at or above this. Give `above` or `below`.")
    below: float | None = Field(None, description="Trigger when the value is at or below this. Give `above` or `below`.")
    clear_at: float = Field(description="The incident clears once the value is back past this level (below it for "
                            "`above`, above it for `below`), so a value flapping around the trigger does not reopen it.")
    min_duration_s: float = Field(0.0, ge=0, description="The value must stay beyond the trigger this long before an incident opens.")

    @model_validator(mode="after")
    def _levels(self) -> ThresholdRuleConfig:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` and `below`")
        if self.above is not None and self.clear_at > self.above:
            raise ValueError(f"clear_at ({self.clear_at}) must not be above `above` ({self.above})")
        if self.below is not None and self.clear_at < self.below:
            raise ValueError(f"clear_at ({self.clear_at}) must not be below `below` ({self.below})")
        return self


class AlarmRuleConfig(_Rule):
    """A boolean value (smoke, cover open) that is true; clears when it turns false."""

    type: Literal["alarm"] = Field(description="Rule type.")
    value: str = Field(description="Boolean reading value, e.g. `smoke`.")
    min_duration_s: float = Field(0.0, ge=0, description="The alarm must stay true this long before an incident opens.")


class RateRuleConfig(_Rule):
    """A value that rises (or falls) by at least `change` within `window_s`, e.g. water rising fast."""

    type: Literal["rate"] = Field(description="Rule type.")
    value: str = Field(description="Reading value the rule looks at, e.g. `level`.")
    change: float = Field(description="Change within the window that triggers: positive for a rise, negative for a fall.")
    window_s: float = Field(gt=0, description="Window the change is measured over, seconds.")

    @model_validator(mode="after")
    def _nonzero(self) -> RateRuleConfig:
        if self.change == 0:
            raise ValueError("change must not be 0")
        return self


class OfflineRuleConfig(_Rule):
    """No message from the sensor for longer than its heartbeat interval."""

    type: Literal["offline"] = Field(description="Rule type.")
    heartbeat_s: float = Field(gt=0, description="The sensor reports at least this often; silence beyond it means offline.")


class BatteryRuleConfig(_Rule):
    """Battery at or below `below` percent; clears above `clear_at`."""

    type: Literal["low_battery"] = Field(description="Rule type.")
    value: str = Field("battery", description="Reading value holding the battery level in percent.")
    below: float = Field(20.0, ge=0, le=100, description="Trigger at or below this level, percent.")
    clear_at: float = Field(30.0, ge=0, le=100, description="Clear above this level, percent (e.g. after a battery change).")

    @model_validator(mode="after")
    def _levels(self) -> BatteryRuleConfig:
        if self.clear_at < self.below:
            raise ValueError(f"clear_at ({self.clear_at}) must not be below `below` ({self.below})")
        return self


SENSOR_RULE_TYPES = ("threshold", "alarm", "rate", "offline", "low_battery")

SensorRuleConfig = Annotated[
    ThresholdRuleConfig | AlarmRuleConfig | RateRuleConfig | OfflineRuleConfig | BatteryRuleConfig,
    Field(discriminator="type"),
]


def sensor_rules_hash(kind: str, rules: list) -> str:
    """Short hash of what decides what a sensor reports (its kind and rules); events carry it."""
    doc = {"kind": kind, "rules": [r.model_dump() for r in rules]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def check_rule_values(devices: list, produced: set[str]) -> None:
    """ValueError naming the first rule (`devices[i].rules[j].value`) whose value no topic produces."""
    for i, d in enumerate(devices):
        for j, r in enumerate(d.rules):
            value = getattr(r, "value", None)
            if value is not None and value not in produced:
                raise ValueError(f"devices[{i}].rules[{j}].value: no topic's profile produces {value!r}; "
                                 f"values produced: {sorted(produced)}")
