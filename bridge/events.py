"""From an incident change to an Event: category, grid-resolved location, evidence, provenance."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from bridge.catalogue import Catalogue
from bridge.config import LocationConfig
from bridge.event import CategoryRef, DetectorRef, Event, Evidence, GridRef, Location, SourceRef
from bridge.evidence import StoredItem
from bridge.grid import GridIndex
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


class EventFactory:
    def __init__(self, grid: GridIndex, catalogue: Catalogue) -> None:
        self.grid = grid
        self.catalogue = catalogue
        self._resolve = lru_cache(maxsize=4096)(self._resolve_uncached)

    def _resolve_uncached(self, lon: float, lat: float, crs: str) -> tuple[GridRef | None, str | None]:
        match, reason = self.grid.resolve(lon, lat, crs)
        return (match.to_ref() if match else None), reason

    def make(
        self,
        change: IncidentChange,
        camera: CameraContext,
        occurred_at: datetime,
        evidence: dict[str, StoredItem] | None = None,
        media_time_s: float | None = None,
    ) -> Event:
        entry = self.catalogue[camera.categories[change.rule_id]]
        loc = camera.location
        grid, reason = self._resolve(loc.lon, loc.lat, loc.crs)
        cond = change.condition
        return Event(
            event_id=str(uuid.uuid4()),
            incident_id=change.incident_id,
            status=change.status,
            category=CategoryRef(code=entry.code, name=entry.name),
            occurred_at=occurred_at,
            source=SourceRef(kind="video", camera_id=camera.camera_id, zone=change.zone, media_time_s=media_time_s),
            location=Location(lon=loc.lon, lat=loc.lat, crs=loc.crs),
            grid=grid,
            grid_reason=reason,
            confidence=round(min(1.0, max(0.0, cond.score)), 4),
            evidence=Evidence(
                bbox=[round(v, 4) for v in cond.bbox] if cond.bbox else None,
                sha256={k: item.sha256 for k, item in (evidence or {}).items()},
                **{k: item.url for k, item in (evidence or {}).items()},
            ),
            detector=DetectorRef(model=camera.rule_models.get(change.rule_id, camera.model), rule=change.rule_id, config_hash=camera.config_hash),
        )
