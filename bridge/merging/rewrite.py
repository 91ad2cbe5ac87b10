"""The merge as a stage on the way to the outbox: each event is rewritten to its merged incident.

A source incident that founds a merged incident keeps its id and statuses. One that joins an
open incident is reported under that incident's id: its `opened` becomes `updated` (the incident
gained a source), and a source's `cleared` is `updated` while other sources still see the
incident, `cleared` with the last one. Every event lists all sources so far. Events without a
grid, and verification events, pass unchanged. Pure: the time is the event's `occurred_at`.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bridge.events.model import NOT_LIFECYCLE, Event, IncidentSource
from bridge.location.coordinates import convert
from bridge.merging.incidents import IncidentMerger, Sighting, SourceKey


class MergeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Merge incidents of one category from different cameras and "
                          "sensors into one incident listing all its sources.")
    radius_m: float = Field(50.0, ge=0, description="Sightings at most this many metres apart (object or "
                            "camera positions) can be one incident.")
    window_s: float = Field(600.0, ge=0, description="A source's incident joins an open incident whose latest "
                            "sighting is at most this many seconds older; keep it above the rules' "
                            "`update_interval_s`.")


def source_name(ev: Event) -> str:
    return f"camera:{ev.source.camera_id}" if ev.source.camera_id else f"sensor:{ev.source.sensor_id}"


class MergeStage:
    def __init__(self, config: MergeConfig) -> None:
        self.config = config
        self.merger = IncidentMerger(config.radius_m, config.window_s)
        # A source incident stays in the grid where it first appeared, even if its object's
        # position later crosses a boundary: its updates must find their merged incident.
        self._home: dict[SourceKey, str] = {}
        self._meta: dict[SourceKey, IncidentSource] = {}

    def apply(self, ev: Event) -> Event:
        if not self.config.enabled or ev.status in NOT_LIFECYCLE:
            return ev
        own = ev.sources[0] if ev.sources else IncidentSource(
            kind=ev.source.kind, camera_id=ev.source.camera_id, sensor_id=ev.source.sensor_id,
            zone=ev.source.zone, rule=ev.detector.rule, incident_id=ev.incident_id, active=True)
        key = (source_name(ev), own.incident_id)
        grid = self._home.get(key) or (ev.grid.code if ev.grid else None)
        if grid is None:  # never in a grid: nothing to merge with
            return ev
        self._home[key] = grid
        ends = ev.status == "cleared"
        lon, lat = convert(ev.location.lon, ev.location.lat, ev.location.crs, "wgs84")
        inc, new = self.merger.observe(Sighting(key[0], key[1], ev.category.code, grid, lon, lat,
                                                ev.occurred_at.timestamp(), ends))
        self._meta[key] = own.model_copy(update={"active": not ends})
        sources = [self._meta[k] for k in inc.latest]
        if ends:
            del self._home[key]
        if not inc.open:
            for k in inc.latest:
                self._meta.pop(k, None)
        if new:
            status = ev.status
        elif ends:
            status = "cleared" if not inc.open else "updated"
        else:
            status = "updated"
        return ev.model_copy(update={"incident_id": inc.incident_id, "status": status, "sources": sources})
