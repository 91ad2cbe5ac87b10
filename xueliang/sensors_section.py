"""The `sensors:` section of the root config: the sensor registry plus where readings come from.

Composes `ingest`'s input models (topics, decoder profiles, limits), `detectors`' rule models and
`bridge`'s location model, which is why it lives at the composition root.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.bridge_config import DeadLetterConfig, LocationConfig
from detectors.rule_checks import check_unique_names
from detectors.sensor_rule_config import SensorRuleConfig, check_rule_values, sensor_rules_hash
from ingest.sensor_input_config import SensorInputConfig

SensorKind = Literal["smoke", "gas", "manhole", "water-level", "bin-fill", "dust", "hydrant", "ebike-charging", "other"]


class SensorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$", description="Sensor id as the vendor reports it; unique; appears in events.")
    kind: SensorKind = Field(description="What the sensor measures.")
    name: str | None = Field(None, description="Display name.")
    location: LocationConfig = Field(description="Where the sensor is installed; its events are resolved to a grid from here.")
    cameras: list[str] = Field(default_factory=list, description="Ids of cameras that see the sensor; an opened incident carries a snapshot from the first one with a frame.")
    rules: list[SensorRuleConfig] = Field(default_factory=list, description="Rules run on this sensor's readings.")

    @model_validator(mode="after")
    def _unique_rules(self) -> SensorConfig:
        check_unique_names([], self.rules)
        return self

    def config_hash(self) -> str:
        return sensor_rules_hash(self.kind, self.rules)


class SensorsConfig(SensorInputConfig):
    devices: list[SensorConfig] = Field(default_factory=list, description="The sensor registry: every sensor this instance accepts readings from.")
    deadletters: DeadLetterConfig = Field(default_factory=DeadLetterConfig, description="Where rejected messages are kept for inspection.")
    batch_size: int = Field(1000, ge=1, le=100_000, description="Messages handled per batch; each batch is stored, then acknowledged to the broker together.")
    offline_check_s: float = Field(1.0, gt=0, description="How often offline rules are checked, seconds.")

    @model_validator(mode="after")
    def _registry(self) -> SensorsConfig:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"sensor ids must be unique; repeated: {dupes}")
        check_rule_values(self.devices, self.produced_values())
        return self
