"""Config models owned by `detectors`: the model, the tracker, zones and rules. Times are seconds."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry import Polygon

from detectors.registry import NAME_PATTERN
from detectors.scene_config import SceneModelConfig  # noqa: F401  (re-exported: cameras[].scene)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchConfig(_Strict):
    """How inference batches frames across cameras (one forward pass per model per round)."""

    max_size: int = Field(
        1, ge=1, le=64,
        description="Most frames in one forward pass. Frames that arrive while a pass runs wait and go "
        "together in the next; 1 (the default) runs one frame per pass. On a 2-core CPU batches were no "
        "faster and hold more memory (yolov8n at 640 on OpenVINO: about 150 MB more at 4, 290 MB at 8; "
        "see docs/benchmarks.md); raise it where the engine gains from batches (many cores, a GPU).",
    )
    max_wait_ms: float = Field(
        2.0, ge=0, le=100,
        description="Longest a pass waits for more frames when fewer than `max_size` are pending, "
        "milliseconds; 0 runs whatever is pending at once.",
    )


class ModelConfig(_Strict):
    name: str = Field(
        "yolov8n", pattern=NAME_PATTERN,
        description="Registry name of the detection model (`xueliang models list`): `yolov8n`, the built-in COCO "
        "model fetched at setup, or one added with `xueliang models import`. Nothing is downloaded or exported "
        "at run time.",
    )
    backend: Literal["openvino", "onnx", "torch"] = Field(
        "openvino",
        description="Inference engine. `openvino` is the fastest on CPU; `torch` runs the checkpoint itself. "
        "An imported model must have been exported for it at import (`--backend`).",
    )
    imgsz: int | None = Field(
        None, ge=160, le=1920, multiple_of=32,
        description="Square input size the model runs at, pixels; default: the size it was imported at (640 for "
        "`yolov8n`, which alone can also run at other sizes fetched with `xueliang models fetch --imgsz`).",
    )
    precision: Literal["fp32", "int8"] = Field(
        "fp32", description="Weights and activations of the built-in model: `int8` runs the NNCF-quantised OpenVINO "
        "export made by `xueliang models fetch --int8` (faster on CPU; accuracy in docs/benchmarks.md).")
    min_score: float = Field(0.25, gt=0, le=1, description="Per-detection minimum score; lower scores are discarded before tracking.")
    iou: float = Field(0.7, gt=0, le=1, description="IoU threshold of non-maximum suppression.")
    threads: int | None = Field(None, ge=1, description="Inference threads; default: all cores.")
    batch: BatchConfig = Field(default_factory=BatchConfig, description="Batching of frames from several cameras into one forward pass.")


class TrackerConfig(_Strict):
    track_buffer_s: float = Field(
        2.0, gt=0,
        description="How long a lost track is kept for re-association by position, seconds. Longer bridges "
        "occlusions but lets a newcomer at the same spot inherit an old track; stationary objects are held "
        "longer, by `hold_s`.",
    )
    min_lost_frames: int = Field(
        3, ge=1,
        description="A lost track is forgotten only once it was also missing in this many analysed frames in a "
        "row (besides `track_buffer_s`): when the analysis rate falls under load, a gap between two frames is "
        "not an absence. (When an incident clears is the rule's `min_absent_frames`.)",
    )
    hold_s: float = Field(
        60.0, ge=0,
        description="A stationary object that vanishes (a parked car behind a bus, a bag behind a crowd) is "
        "held at its place this long, seconds: if it reappears there looking the same it keeps its track, "
        "and its incident stays open meanwhile. 0: no holding.",
    )
    no_hold_classes: list[str] = Field(
        default_factory=lambda: ["person"],
        description="Classes never held: people move on, and one who walks away while the view around them "
        "changes looks hidden, so a look-alike (or the same person) coming back within `hold_s` would carry "
        "the old stay on. Held by default: vehicles and objects (a parked car behind a bus, a bag behind a "
        "crowd). Empty: hold every class.",
    )
    hold_min_still_s: float = Field(
        5.0, gt=0, description="An object that stood still this long before it vanished is held, seconds."
    )
    hold_iou: float = Field(
        0.5, gt=0, le=1,
        description="Box overlap (IoU) that counts as standing still, and as standing where a held object stood.",
    )
    hold_similarity: float = Field(
        0.92, gt=0, le=1,
        description="Colour-histogram similarity (Bhattacharyya coefficient, 0..1) from which an object "
        "appearing where a held one stood is that object back; below it, once it stands there, it is a "
        "newcomer and the held object is let go. A track found again by position after `track_buffer_s` "
        "must look at least this similar too. On the table clip one person scores 0.95-1.0 with herself, "
        "0.5-0.89 with the next visitor.",
    )
    high_score: float = Field(0.25, gt=0, le=1, description="First-stage association threshold on detection score.")
    low_score: float = Field(0.1, gt=0, le=1, description="Second-stage threshold: weaker detections may still continue a track.")
    new_track_score: float = Field(0.25, gt=0, le=1, description="Minimum score to start a new track.")
    match_iou: float = Field(0.8, gt=0, le=1, description="Association cost threshold (1 - IoU, fused with score).")
    history_s: float = Field(900.0, gt=0, description="How much of each track's box history is kept, seconds.")


def check_polygon(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A polygon in normalised image coordinates: at least 3 vertices, inside the image, simple."""
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, got {len(pts)}")
    for i, (x, y) in enumerate(pts):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"vertex {i} ({x}, {y}) is outside the image; coordinates are normalised 0..1")
    if not Polygon(pts).is_valid:
        raise ValueError("the polygon intersects itself")
    return pts


class ZoneConfig(_Strict):
    name: str = Field(description="Zone name, unique within the camera; rules refer to it.")
    polygon: list[tuple[float, float]] = Field(
        description="Vertices [x, y] in normalised image coordinates (0..1, origin top-left), at least 3."
    )

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return check_polygon(pts)


class ObjectFilterConfig(_Strict):
    """Per-class detection filters, applied before tracking."""

    min_score: float | None = Field(None, gt=0, le=1, description="Minimum detection score for this class; default: `model.min_score`.")
    min_area: float = Field(0.0, ge=0, le=1, description="Minimum box area as a fraction of the frame.")
    max_area: float = Field(1.0, gt=0, le=1, description="Maximum box area as a fraction of the frame.")
    min_aspect: float = Field(0.0, ge=0, description="Minimum width/height ratio of the box.")
    max_aspect: float = Field(1000.0, gt=0, description="Maximum width/height ratio of the box.")


class MaskConfig(_Strict):
    include: list[list[tuple[float, float]]] = Field(
        default_factory=list,
        description="Polygons (normalised); when any is given, only objects whose bottom-centre lies in one are kept.",
    )
    exclude: list[list[tuple[float, float]]] = Field(
        default_factory=list,
        description="Polygons (normalised); objects whose bottom-centre lies in one are dropped (trees, screens, posters).",
    )

    @field_validator("include", "exclude")
    @classmethod
    def _polygons(cls, polys: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for poly in polys:
            check_polygon(poly)
        return polys


_HHMM = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"


class _RuleBase(_Strict):
    id: str = Field(description="Rule id, unique within the camera; it appears in events.")
    category: str = Field(description="Category code from the catalogue that events of this rule carry.")
    zone: str = Field(description="Name of the camera zone the rule watches.")
    min_score: float = Field(0.4, gt=0, le=1, description="Minimum median detection score of a track for it to count.")
    grace_s: float = Field(3.0, ge=0, description="Seconds the condition must be absent before the incident clears.")
    min_absent_frames: int = Field(
        2, ge=1,
        description="The incident clears only once its condition was also absent in this many analysed frames in a "
        "row (besides `grace_s`): when the analysis rate falls under load, one frame that misses the subject "
        "after a long gap is not yet an absence. Kept low because at a few seconds between frames each one "
        "more frame delays the clear by that much: a short gap between two occurrences would then join them.",
    )
    update_interval_s: float = Field(30.0, gt=0, description="At most one `updated` event per incident per this many seconds.")
    cooldown_s: float = Field(
        0.0, ge=0, description="After an incident clears, the same rule and zone cannot open a new one for this long."
    )
    active_hours: list[str] = Field(
        default_factory=list,
        description="Local times the rule runs, e.g. [\"07:00-22:00\"] (camera timezone; may cross midnight). Empty: always.",
    )

    @field_validator("active_hours")
    @classmethod
    def _hours(cls, spans: list[str]) -> list[str]:
        for span in spans:
            if not re.match(_HHMM, span):
                raise ValueError(f"{span!r} is not HH:MM-HH:MM")
        return spans


class DwellRuleConfig(_RuleBase):
    """An object of the given classes whose box bottom-centre stays in a zone for `min_dwell_s`."""

    type: Literal["dwell"] = Field(description="Rule type.")
    classes: list[str] = Field(min_length=1, description="Model class names that count, e.g. [person].")
    min_dwell_s: float = Field(gt=0, description="Seconds an object must stay in the zone before an incident opens.")
    exit_tolerance_s: float = Field(
        1.0, ge=0, description="An object seen outside the zone for up to this long still counts as staying (zone inertia)."
    )


class ParkingRuleConfig(_RuleBase):
    """Illegal parking (乱停乱放): a vehicle stationary in a no-parking zone for `min_stationary_s`."""

    type: Literal["parking"] = Field(description="Rule type.")
    classes: list[str] = Field(
        default_factory=lambda: ["car", "truck", "bus", "motorcycle"],
        description="Vehicle classes; use [bicycle, motorcycle] for non-motor parking.",
    )
    min_stationary_s: float = Field(gt=0, description="Seconds a vehicle must stand still in the zone.")
    stationary_iou: float = Field(0.7, gt=0, le=1, description="A box overlapping its own earlier box at least this much (IoU) is still.")
    exit_tolerance_s: float = Field(2.0, ge=0, description="Short excursions out of the zone (box jitter) that do not end a stay.")


class OccupationRuleConfig(_RuleBase):
    """Road occupation / street vending (占道经营): stall-like objects standing in a zone, with people at them."""

    type: Literal["occupation"] = Field(description="Rule type.")
    stall_classes: list[str] = Field(
        default_factory=lambda: ["umbrella", "chair", "dining table", "bench", "suitcase", "potted plant"],
        description="Classes that look like a stall's furniture or goods.",
    )
    person_classes: list[str] = Field(default_factory=lambda: ["person"], description="Classes of the vendors.")
    min_duration_s: float = Field(gt=0, description="Seconds the stall objects must stand in the zone.")
    min_person_fraction: float = Field(
        0.3, ge=0, le=1, description="Fraction of that time at least one person must be in the zone too (0: no person needed)."
    )
    stationary_iou: float = Field(0.6, gt=0, le=1, description="IoU with its earlier box for a stall object to count as standing.")


class CrowdRuleConfig(_RuleBase):
    """Crowd gathering (人员聚集): at least `min_count` people in a zone for `min_duration_s`."""

    type: Literal["crowd"] = Field(description="Rule type.")
    classes: list[str] = Field(default_factory=lambda: ["person"], description="Classes counted.")
    min_count: int = Field(ge=1, description="People needed at once.")
    min_duration_s: float = Field(gt=0, description="Seconds the count must hold.")
    min_fraction: float = Field(
        0.8, gt=0, le=1, description="Fraction of analysed frames in that time that must reach the count (missed detections)."
    )


class DumpingRuleConfig(_RuleBase):
    """Illegal dumping (乱倒垃圾): an object that appears after a person or vehicle passes and is left behind."""

    type: Literal["dumping"] = Field(description="Rule type.")
    object_classes: list[str] = Field(
        default_factory=lambda: ["bottle", "cup", "bowl", "suitcase", "backpack", "handbag", "chair", "couch", "bed",
                                 "tv", "refrigerator", "microwave", "oven", "toilet", "potted plant", "vase"],
        description="Classes of objects that can be dumped.",
    )
    carrier_classes: list[str] = Field(
        default_factory=lambda: ["person", "bicycle", "car", "motorcycle", "truck"],
        description="Classes that bring objects: a new object must appear near one of them.",
    )
    min_left_s: float = Field(gt=0, description="Seconds the object must stay with no carrier near it.")
    carrier_window_s: float = Field(3.0, gt=0, description="A carrier must be near the object within this long of its appearance.")
    near_margin: float = Field(0.1, ge=0, le=1, description="Boxes closer than this (fraction of the frame) count as near.")
    warmup_s: float = Field(2.0, ge=0, description="Objects already in view during the first seconds are scenery, never dumped.")
    stationary_iou: float = Field(0.6, gt=0, le=1, description="IoU with its earlier box for the object to count as left standing.")
    scene_regions: bool = Field(
        True,
        description="Also count objects of any kind: static new regions of the camera's scene model (see `scene`), "
        "not only the model's `object_classes`. A region and a detection at the same place are one object.",
    )
    min_region_area: float = Field(
        0.0008, gt=0, lt=1, description="Smallest scene region that counts as a left object, fraction of the frame.",
    )
    max_region_area: float = Field(
        0.15, gt=0, le=1, description="Largest scene region that counts as one left object, fraction of the frame.",
    )
    self_classes: list[str] = Field(
        default_factory=lambda: ["person", "bicycle", "car", "motorcycle", "bus", "truck"],
        description="A scene region that is one of these standing still (a parked car, a person waiting) is not a left "
        "object: see `self_iou`.",
    )
    self_iou: float = Field(
        0.4, gt=0, le=1,
        description="A region whose box overlaps a `self_classes` object's box this much (IoU) since it appeared is "
        "that object standing still, not something left.",
    )

    @model_validator(mode="after")
    def _region_sizes(self) -> DumpingRuleConfig:
        if self.min_region_area >= self.max_region_area:
            raise ValueError(f"min_region_area ({self.min_region_area}) must be below max_region_area ({self.max_region_area})")
        return self


class PileRuleConfig(_RuleBase):
    """Piles (乱堆物料 / 积存垃圾渣土): a new region of the scene that stays in a no-storage zone for a long time.

    Objects of any kind (boxes, rubble, sacks), from the camera's scene model; no carrier needed.
    """

    type: Literal["pile"] = Field(description="Rule type.")
    min_static_s: float = Field(
        300.0, gt=0, description="Seconds the region must have been part of the scene before an incident opens.",
    )
    min_region_area: float = Field(
        0.004, gt=0, lt=1, description="Smallest region that counts as a pile, fraction of the frame.",
    )
    self_classes: list[str] = Field(
        default_factory=lambda: ["person", "bicycle", "car", "motorcycle", "bus", "truck"],
        description="A region that is one of these standing still (its box overlaps theirs by `self_iou`) is not a pile.",
    )
    self_iou: float = Field(0.4, gt=0, le=1, description="Overlap (IoU) with such an object's box that makes it that object.")


class ClassConfig(_Strict):
    """What one class of a model means: its category and its own thresholds. The main model's
    classes (`cameras[].classes`) and the extra models' (`cameras[].models[].classes`) alike."""

    category: str = Field(description="Category code the class reports, e.g. sanitation.garbage-overflow.")
    min_score: float = Field(0.5, gt=0, le=1, description="Minimum median score of the class's track.")
    min_duration_s: float = Field(5.0, gt=0, description="Seconds the object must be seen (in the zone) before an incident opens.")
    zone: str | None = Field(None, description="Camera zone to watch; the whole frame when omitted.")
    grace_s: float = Field(5.0, ge=0, description="Seconds of absence before the incident clears.")
    update_interval_s: float = Field(60.0, gt=0, description="At most one `updated` event per incident per this many seconds.")


CustomClassConfig = ClassConfig  # the name before the main model's classes could be mapped too

# Rule ids of the main model's mapped classes are `model:<class>`, whichever model is the main one,
# so labels and tuning keep their ids when the model changes.
MAIN_MODEL_PREFIX = "model"


def class_rules(prefix: str, classes: dict[str, ClassConfig]) -> list[DwellRuleConfig]:
    """Each mapped class as a presence rule `<prefix>:<class>`: seen in its zone for `min_duration_s`."""
    return [
        DwellRuleConfig(
            id=f"{prefix}:{cls}", type="dwell", category=c.category, zone=c.zone or FULL_FRAME,
            classes=[cls], min_dwell_s=c.min_duration_s, min_score=c.min_score, grace_s=c.grace_s,
            update_interval_s=c.update_interval_s, exit_tolerance_s=2.0,
        )
        for cls, c in classes.items()
    ]


class CustomModelConfig(_Strict):
    """An extra detection model for this camera: a registered model (`model`), or an Ultralytics
    export given by `path` (ONNX file or OpenVINO folder)."""

    model: str | None = Field(None, pattern=NAME_PATTERN, description="Registry name of the model (`xueliang models list`).")
    name: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Rule ids of its classes are `<name>:<class>`; default: `model`. Required with `path`, "
        "where it is also the model name events carry.",
    )
    path: Path | None = Field(
        None, description="Instead of `model`: the exported model, a `.onnx` file or an `*_openvino_model` folder "
        "with Ultralytics metadata; relative to the config file.")
    backend: Literal["onnx", "openvino"] | None = Field(
        None, description="Engine that runs it; default: `onnx` with `path`, `model.backend` with `model` "
        "(`onnx` when that is `torch`; a registered model must have been exported for it).")
    imgsz: int | None = Field(None, ge=160, le=1920, multiple_of=32,
                              description="Input size; default: the model's own (from the registry or the export).")
    min_score: float = Field(0.25, gt=0, le=1, description="Per-detection minimum score before tracking.")
    iou: float = Field(0.7, gt=0, le=1, description="IoU threshold of non-maximum suppression.")
    classes: dict[str, ClassConfig] = Field(
        min_length=1, description="Model class name -> category and thresholds; other classes are ignored."
    )

    @model_validator(mode="after")
    def _one_source(self) -> CustomModelConfig:
        if (self.model is None) == (self.path is None):
            raise ValueError("give either `model` (a registry name) or `path` (an exported file), not both or neither")
        if self.path is not None and self.name is None:
            raise ValueError("`name` is required with `path`")
        if self.name is None:
            self.name = self.model
        return self

    def engine(self, main_backend: str) -> CustomModelConfig:
        """This model with its backend decided: the given one, else onnx (path) or the main model's."""
        if self.backend is not None:
            return self
        backend = "onnx" if self.path is not None or main_backend == "torch" else main_backend
        return self.model_copy(update={"backend": backend})

    def rules(self) -> list[DwellRuleConfig]:
        """Each mapped class as a presence rule: seen in its zone for `min_duration_s`."""
        return class_rules(self.name, self.classes)


FULL_FRAME = "frame"
FULL_FRAME_ZONE = ZoneConfig(name=FULL_FRAME, polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])

RULE_TYPES = ("dwell", "parking", "occupation", "crowd", "dumping", "pile")

RuleConfig = Annotated[
    Union[DwellRuleConfig, ParkingRuleConfig, OccupationRuleConfig, CrowdRuleConfig, DumpingRuleConfig, PileRuleConfig],
    Field(discriminator="type"),
]
