"""One incident, one record: merge sightings of one problem from several cameras and sensors.

A new source incident joins an open merged incident when it has the same category, lies in the
same grid, within `radius_m` metres of a sighting already in the incident, within `window_s`
seconds of its latest sighting, and comes from a source not yet in it (one source's own
incidents were already told apart by its lifecycle). A merged incident stays open while any of
its source incidents is open and closes with the last one; a closed incident takes no new
sightings, so a problem that comes back after the platform got `cleared` is a new incident.

The state is a dict keyed by grid code and a sighting only ever looks at its own grid's entry,
so the merger can later run partitioned by grid across machines (the Kafka key is the grid code
too). Pure: time comes in with the sighting; no clocks, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bridge.location.coordinates import distance_m

SourceKey = tuple[str, str]  # (source, source-local incident id)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One source's incident as the merger sees it (lon/lat in one CRS for the whole layer)."""

    source: str  # "camera:cam-01", "sensor:smoke-17"
    incident_id: str  # the source-local incident id (lifecycle's)
    category: str
    grid: str
    lon: float
    lat: float
    t: float  # seconds
    ends: bool = False  # the source incident is over (its `cleared`)

    @property
    def key(self) -> SourceKey:
        return self.source, self.incident_id


@dataclass
class MergedIncident:
    incident_id: str  # the first sighting's id: stable, and the same on every replica
    category: str
    grid: str
    first_t: float
    last_t: float
    # Latest sighting of each source incident, in order of first report: bounded by the number
    # of source incidents, however long they last.
    latest: dict[SourceKey, Sighting] = field(default_factory=dict)
    active: set[SourceKey] = field(default_factory=set)

    @property
    def sources(self) -> list[str]:
        """Every source that reported this incident, in order of first report."""
        return list(dict.fromkeys(k[0] for k in self.latest))

    @property
    def open(self) -> bool:
        return bool(self.active)

    def near(self, s: Sighting, radius_m: float) -> bool:
        return any(distance_m(m.lon, m.lat, s.lon, s.lat) <= radius_m for m in self.latest.values())


class IncidentMerger:
    def __init__(self, radius_m: float, window_s: float) -> None:
        if radius_m < 0 or window_s < 0:
            raise ValueError(f"radius_m ({radius_m}) and window_s ({window_s}) must be >= 0")
        self.radius_m, self.window_s = radius_m, window_s
        self.by_grid: dict[str, list[MergedIncident]] = {}  # open incidents only

    def observe(self, s: Sighting) -> tuple[MergedIncident, bool]:
        """Add a sighting; returns (its merged incident, True if that incident is new).

        After a sighting that `ends` the incident's last open source, `incident.open` is False
        and the incident has left the state.
        """
        incidents = self.by_grid.setdefault(s.grid, [])
        inc = next((i for i in incidents if s.key in i.latest), None)  # an update of a merged one
        new = False
        if inc is None:
            candidates = [i for i in incidents
                          if i.category == s.category and s.source not in i.sources
                          and abs(s.t - i.last_t) <= self.window_s and i.near(s, self.radius_m)]
            if candidates:  # several: the most recent one, ties by id, so replicas agree
                inc = max(candidates, key=lambda i: (i.last_t, i.incident_id))
            else:
                inc, new = MergedIncident(s.incident_id, s.category, s.grid, s.t, s.t), True
                incidents.append(inc)
        inc.latest[s.key] = s
        (inc.active.discard if s.ends else inc.active.add)(s.key)
        inc.first_t, inc.last_t = min(inc.first_t, s.t), max(inc.last_t, s.t)
        if not inc.open:
            incidents.remove(inc)
        if not incidents:
            del self.by_grid[s.grid]
        return inc, new
