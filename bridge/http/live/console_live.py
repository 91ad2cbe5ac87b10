"""The console's live parts of a running service: the restreamer child (`live`), the availability
recorder, and the overlay of each camera's last analysed frame.

The service config and camera configs are the root's; only the fields read here are used
(`live`, `cameras`, `console_db_path`; a camera's `id`, `name`, `url`, `location`)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import structlog

from bridge.store.availability import UNOBSERVED, AvailabilityLog, AvailabilityRecorder, Place
from bridge.location.grid import GridIndex
from bridge.http.live.routes import LiveFeatures, Overlay, overlay_of
from bridge.http.live.supervisor import Restreamer
from ingest.video import is_network_url

log = structlog.get_logger(__name__)


def place_of(cam: Any, grid: GridIndex | None) -> Place:
    """The street and district of the camera's location in the grid layer."""
    if grid is None:
        return Place()
    loc = cam.location
    match, problem = grid.resolve(loc.lon, loc.lat, loc.crs)
    if match is None:
        log.warning("availability.camera_outside_grid", camera=cam.id, problem=problem)
        return Place()
    district_code = match.code[: grid.scheme.width_of(grid.scheme.levels[0])]
    district = grid.features.get(district_code)
    return Place(match.street_code, match.street, district_code, district.name if district else None)


class ConsoleLive:
    """`runtimes()` gives the service's running cameras (each with `.config`, `.worker`, `.stage`)."""

    def __init__(self, cfg: Any, runtimes: Callable[[], list[Any]], grid: GridIndex | None,
                 owner: str = "service") -> None:
        """`owner`: who writes the availability rows (a cluster worker's name; see bridge/store/availability.py)."""
        self.cfg, self.runtimes, self.grid = cfg, runtimes, grid
        # A cluster worker's config has no cameras (they come by assignment): no restreamer to start there.
        self.restreamer = (Restreamer(cfg.live, {c.id: c.url for c in cfg.cameras})
                           if cfg.live.enabled and cfg.cameras else None)
        if self.restreamer is not None:
            self.restreamer.command(Path("-"))  # a missing go2rtc binary stops the start-up here, named
        self.availability = AvailabilityLog(cfg.console_db_path, owner=owner)
        self.recorder = AvailabilityRecorder(self.availability, self._states)
        self._places: dict[tuple, Place] = {}
        self._seen: set[str] = set()
        self.features = LiveFeatures(self.restreamer, self._overlay, self.availability, self._camera_places,
                                     self._position)

    def _states(self) -> list[tuple[str, str, float]]:
        now = [(rt.config.id, rt.worker.status.state.value, rt.worker.status.since) for rt in self.runtimes()]
        ids = {cid for cid, _, _ in now}
        gone = [(cid, UNOBSERVED, self.recorder.clock()) for cid in self._seen - ids]  # released (cluster)
        self._seen = ids
        return now + gone

    def _overlay(self, camera_id: str) -> Overlay | None:
        for rt in self.runtimes():
            if rt.config.id == camera_id:
                return overlay_of(rt.stage, camera_id)
        return None

    def _position(self, camera_id: str) -> float | None:
        """Where a file camera's playback is now: its live video starts there (the demo's camera)."""
        for rt in self.runtimes():
            if rt.config.id == camera_id and not is_network_url(rt.config.url):
                frame = rt.worker.latest
                return None if frame is None else frame.media_time_s + max(0.0, time.time() - frame.wall_time)
        return None

    def _camera_places(self) -> list[tuple[str, str | None, Place]]:
        out = []
        for rt in self.runtimes():
            loc = rt.config.location
            key = (rt.config.id, loc.lon, loc.lat, loc.crs)
            if key not in self._places:
                self._places[key] = place_of(rt.config, self.grid)
            out.append((rt.config.id, rt.config.name, self._places[key]))
        return out

    def start(self) -> list[asyncio.Task]:
        tasks = [asyncio.create_task(self.recorder.run(), name="availability")]
        if self.restreamer is not None:
            tasks.append(asyncio.create_task(self.restreamer.run(), name="live-restreamer"))
        return tasks

    async def close(self) -> None:
        """Before the cameras stop: from here they are not watched; the restreamer goes with us."""
        self.recorder.stop()
        if self.restreamer is not None:
            await self.restreamer.stop()

    def close_db(self) -> None:
        self.availability.close()
