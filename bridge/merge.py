"""One incident, one record: merge sightings of one problem from several cameras and sensors.

Two sightings are one incident when they have the same category, lie in the same grid, within
`radius_m` metres of a sighting already in the incident and within `window_s` seconds of its
latest sighting. The state is a dict keyed by grid code and a sighting only ever looks at its
own grid's entry, so the merger can later run partitioned by grid across machines (the Kafka
key is the grid code too). Pure: time comes in with the sighting; no clocks, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bridge.geo import distance_m


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


@dataclass
class MergedIncident:
    incident_id: str  # the first sighting's id: stable, and the same on every replica
    category: str
    grid: str
    first_t: float
    last_t: float
    sightings: list[Sighting] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """Every source that reported this incident, in order of first report."""
        return list(dict.fromkeys(s.source for s in self.sightings))

    def near(self, s: Sighting, radius_m: float) -> bool:
        return any(distance_m(m.lon, m.lat, s.lon, s.lat) <= radius_m for m in self.sightings)


class IncidentMerger:
    def __init__(self, radius_m: float, window_s: float) -> None:
        if radius_m < 0 or window_s < 0:
            raise ValueError(f"radius_m ({radius_m}) and window_s ({window_s}) must be >= 0")
        self.radius_m, self.window_s = radius_m, window_s
        self.by_grid: dict[str, list[MergedIncident]] = {}

    def observe(self, s: Sighting) -> tuple[MergedIncident, bool]:
        """Add a sighting; returns (its merged incident, True if that incident is new)."""
        incidents = self.by_grid.setdefault(s.grid, [])
        for inc in incidents:  # an update of a source incident already merged
            if any(m.source == s.source and m.incident_id == s.incident_id for m in inc.sightings):
                return self._add(inc, s), False
        candidates = [inc for inc in incidents
                      if inc.category == s.category and abs(s.t - inc.last_t) <= self.window_s
                      and inc.near(s, self.radius_m)]
        if candidates:  # several: the most recent one, ties by id, so replicas agree
            inc = max(candidates, key=lambda i: (i.last_t, i.incident_id))
            return self._add(inc, s), False
        inc = MergedIncident(s.incident_id, s.category, s.grid, s.t, s.t, [s])
        incidents.append(inc)
        return inc, True

    @staticmethod
    def _add(inc: MergedIncident, s: Sighting) -> MergedIncident:
        inc.sightings.append(s)
        inc.first_t, inc.last_t = min(inc.first_t, s.t), max(inc.last_t, s.t)
        return inc

    def expire(self, now: float) -> list[MergedIncident]:
        """Forget incidents with no sighting for longer than window_s; returns them."""
        gone: list[MergedIncident] = []
        for grid in list(self.by_grid):
            keep = [i for i in self.by_grid[grid] if now - i.last_t <= self.window_s]
            gone += [i for i in self.by_grid[grid] if now - i.last_t > self.window_s]
            if keep:
                self.by_grid[grid] = keep
            else:
                del self.by_grid[grid]
        return gone
