"""From an incident change to an Event: category, grid-resolved location, evidence, provenance."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from bridge.events.catalogue import Catalogue
from bridge.bridge_config import LocationConfig
from bridge.events.model import CategoryRef, DetectorRef, Event, Evidence, GridRef, IncidentSource, Location, RoutingRef, SourceRef
from bridge.events.evidence_store import StoredItem
from bridge.location.grid import GridIndex
from bridge.location.homography import GroundProjector
from detectors.lifecycle import IncidentChange


@dataclass(frozen=True)
class CameraContext:
    """What the bridge needs to know about a camera to describe its incidents."""

    camera_id: str
    location: LocationConfig
    categories: dict[str, str]  # rule id -> category code
    model: str
    config_hash: str
    rule_models: dict[str, str] = field(default_factory=dict)  # rule id -> model, where not `model`
    model_sha256: dict[str, str] = field(default_factory=dict)  # model name -> sha256 of its weights
    ground: GroundProjector | None = None  # image-to-ground homography, if control points are set


class EventFactory:
    def __init__(self, grid: GridIndex, catalogue: Catalogue) -> None:
        self.grid = grid
        self.catalogue = catalogue
        self._resolve = lru_cache(maxsize=4096)(self._resolve_uncached)

    def _resolve_uncached(self, lon: float, lat: float, crs: str) -> tuple[GridRef | None, str | None]:
        match, reason = self.grid.resolve(lon, lat, crs)
        return (match.to_ref() if match else None), reason

    @staticmethod
    def _locate(camera: CameraContext, bbox: tuple[float, float, float, float] | None) -> Location:
        """The object's ground position when the camera has a homography, else the camera's."""
        if camera.ground is not None and bbox:
            point = camera.ground.project_bbox(bbox)
            if point is not None:
                # Rounded to ~1 cm: keeps JSON short and the grid-lookup cache effective.
                return Location(lon=round(point[0], 7), lat=round(point[1], 7),
                                crs=camera.ground.config.crs, method="object")
        loc = camera.location
        return Location(lon=loc.lon, lat=loc.lat, crs=loc.crs)

    def make(
        self,
        change: IncidentChange,
        camera: CameraContext,
        occurred_at: datetime,
        evidence: dict[str, StoredItem] | None = None,
        media_time_s: float | None = None,
    ) -> Event:
        cond = change.condition
        source = SourceRef(kind="video", camera_id=camera.camera_id, zone=change.zone, media_time_s=media_time_s)
        model = camera.rule_models.get(change.rule_id, camera.model)
        detector = DetectorRef(model=model, model_sha256=camera.model_sha256.get(model), rule=change.rule_id,
                               config_hash=camera.config_hash)
        return self.build(change, camera.categories[change.rule_id], occurred_at, source,
                          self._locate(camera, cond.bbox), detector, evidence)

    def build(self, change: IncidentChange, category: str, occurred_at: datetime, source: SourceRef,
              location: Location, detector: DetectorRef, evidence: dict[str, StoredItem] | None = None) -> Event:
        """The event of one change of one source: what every kind of source has in common."""
        entry = self.catalogue[category]
        grid, reason = self._resolve(location.lon, location.lat, location.crs)
        cond = change.condition
        stored = {k: v for k, v in (evidence or {}).items() if v is not None}  # None: refused by the disk guard
        return Event(
            event_id=str(uuid.uuid4()),
            incident_id=change.incident_id,
            status=change.status,
            category=CategoryRef(code=entry.code, name=entry.name, major=entry.major),
            occurred_at=occurred_at,
            source=source,
            location=location,
            grid=grid,
            grid_reason=reason,
            confidence=round(min(1.0, max(0.0, cond.score)), 4),
            evidence=Evidence(
                bbox=[round(v, 4) for v in cond.bbox] if cond.bbox else None,
                sha256={k: item.sha256 for k, item in stored.items()},
                **{k: item.url for k, item in stored.items()},
            ),
            detector=detector,
            routing=RoutingRef(unit=entry.unit, priority=entry.priority),
            priority=entry.priority,
            sources=[IncidentSource(kind=source.kind, camera_id=source.camera_id, sensor_id=source.sensor_id,
                                    zone=source.zone, rule=change.rule_id, incident_id=change.incident_id,
                                    active=change.status != "cleared")],
            clear_reason=change.reason if change.status == "cleared" else None,
        )


@dataclass(frozen=True)
class SensorContext:
    """What the bridge needs to know about a sensor to describe its incidents."""

    sensor_id: str
    kind: str
    location: LocationConfig
    categories: dict[str, str]  # rule id -> category code
    config_hash: str


def make_sensor_event(factory: EventFactory, change: IncidentChange, sensor: SensorContext,
                      occurred_at: datetime, evidence: dict[str, StoredItem] | None = None) -> Event:
    """An IoT incident change as an Event: `source.kind` is `iot`, `detector.model` names the sensor kind.

    `change.camera_id` carries the sensor id: the lifecycle is shared with video.
    """
    loc = sensor.location
    return factory.build(change, sensor.categories[change.rule_id], occurred_at,
                         SourceRef(kind="iot", sensor_id=sensor.sensor_id),
                         Location(lon=loc.lon, lat=loc.lat, crs=loc.crs),
                         DetectorRef(model=f"sensor:{sensor.kind}", rule=change.rule_id, config_hash=sensor.config_hash),
                         evidence)
