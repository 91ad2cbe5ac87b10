"""Config models owned by `detectors`: the model, the tracker, zones and rules. Times are seconds."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from shapely.geometry import Polygon


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    name: Literal["yolov8n"] = Field("yolov8n", description="Detection model; weights are fetched at setup, never at run time.")
    backend: Literal["openvino", "onnx", "torch"] = Field(
        "openvino",
        description="Inference engine. `openvino` is the fastest on CPU; `torch` runs the checkpoint itself.",
    )
    imgsz: int = Field(640, ge=160, le=1920, multiple_of=32, description="Square input size the model runs at, pixels.")
    min_score: float = Field(0.25, gt=0, le=1, description="Per-detection minimum score; lower scores are discarded before tracking.")
    iou: float = Field(0.7, gt=0, le=1, description="IoU threshold of non-maximum suppression.")
    threads: int | None = Field(None, ge=1, description="Inference threads; default: all cores.")


class TrackerConfig(_Strict):
    track_buffer_s: float = Field(
        2.0, gt=0,
        description="How long a lost track is kept for re-association, seconds. Longer bridges occlusions "
        "but lets a newcomer at the same spot inherit an old track.",
    )
    high_score: float = Field(0.25, gt=0, le=1, description="First-stage association threshold on detection score.")
    low_score: float = Field(0.1, gt=0, le=1, description="Second-stage threshold: weaker detections may still continue a track.")
    new_track_score: float = Field(0.25, gt=0, le=1, description="Minimum score to start a new track.")
    match_iou: float = Field(0.8, gt=0, le=1, description="Association cost threshold (1 - IoU, fused with score).")
    history_s: float = Field(900.0, gt=0, description="How much of each track's box history is kept, seconds.")


class ZoneConfig(_Strict):
    name: str = Field(description="Zone name, unique within the camera; rules refer to it.")
    polygon: list[tuple[float, float]] = Field(
        description="Vertices [x, y] in normalised image coordinates (0..1, origin top-left), at least 3."
    )

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(pts) < 3:
            raise ValueError(f"a zone needs at least 3 vertices, got {len(pts)}")
        for i, (x, y) in enumerate(pts):
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"vertex {i} ({x}, {y}) is outside the image; coordinates are normalised 0..1")
        if not Polygon(pts).is_valid:
            raise ValueError("the polygon intersects itself")
        return pts


class DwellRuleConfig(_Strict):
    """An object of the given classes whose box bottom-centre stays in a zone for `min_dwell_s`."""

    id: str = Field(description="Rule id, unique within the camera; it appears in events.")
    type: Literal["dwell"] = Field(description="Rule type.")
    category: str = Field(description="Category code from the catalogue that events of this rule carry.")
    zone: str = Field(description="Name of the camera zone the object must stay in.")
    classes: list[str] = Field(min_length=1, description="Model class names that count, e.g. [person].")
    min_dwell_s: float = Field(gt=0, description="Seconds an object must stay in the zone before an incident opens.")
    min_score: float = Field(0.4, gt=0, le=1, description="Minimum median detection score over the track's time in the zone.")
    exit_tolerance_s: float = Field(
        1.0, ge=0, description="An object seen outside the zone for up to this long still counts as staying (zone inertia)."
    )
    grace_s: float = Field(3.0, ge=0, description="Seconds the condition must be absent before the incident clears.")
    update_interval_s: float = Field(30.0, gt=0, description="At most one `updated` event per incident per this many seconds.")


RuleConfig = DwellRuleConfig
