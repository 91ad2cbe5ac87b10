"""The `sensors:` section of the root config: the sensor registry plus where readings come from.

Composes `ingest`'s input models (topics, decoder profiles, limits), `detectors`' rule models and
`bridge`'s location model, which is why it lives at the composition root.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.bridge_config import LocationConfig
from detectors.sensor_rule_config import SensorRuleConfig
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
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rule ids must be unique, got {ids}")
        return self

    def config_hash(self) -> str:
        doc = {"kind": self.kind, "rules": [r.model_dump() for r in self.rules]}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


class DeadLetterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(None, description="SQLite file of rejected messages; default: `<data_dir>/deadletters.sqlite3`.")
    max_rows: int = Field(1_000_000, ge=1000, description="Oldest rejected messages beyond this many are deleted (their counts stay).")


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
        produced = {v for t in self.topics for v in self.all_profiles()[t.profile].values}
        for i, d in enumerate(self.devices):
            for j, r in enumerate(d.rules):
                value = getattr(r, "value", None)
                if value is not None and value not in produced:
                    raise ValueError(f"devices[{i}].rules[{j}].value: no topic's profile produces {value!r}; "
                                     f"values produced: {sorted(produced)}")
        return self
