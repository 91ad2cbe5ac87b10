"""The console's map: its settings, the grid layer as one cached GeoJSON, cameras and open incidents,
all in the map's one coordinate system (`api.map.crs`), and MapLibre GL JS served from disk."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from bridge.events.catalogue import Catalogue
from bridge.bridge_config import ClocksConfig, MapConfig
from bridge.http.console.clocks import clock, limits_of
from bridge.http.console.map_layer import MapLayer
from bridge.http.console.open_incidents import open_incidents
from bridge.location.coordinates import convert
from bridge.location.grid import GridIndex

log = structlog.get_logger(__name__)

LIBRARY = "web/node_modules/maplibre-gl/dist"
SOURCE_TREE = Path(__file__).resolve().parents[2]

#: camera id -> (lon, lat, crs) of where it stands
Locations = Callable[[], dict[str, tuple[float, float, str]]]


def camera_locations(configs: Any) -> dict[str, tuple[float, float, str]]:
    """Where each camera of these configs stands, for `Locations`."""
    return {c.id: (c.location.lon, c.location.lat, c.location.crs) for c in configs}


def library_dir(cfg: MapConfig) -> Path:
    """The configured folder, else the source checkout's, else the working directory's."""
    if cfg.library_dir is not None:
        return cfg.library_dir
    for base in (SOURCE_TREE, Path.cwd()):
        if (base / LIBRARY / "maplibre-gl.js").is_file():
            return base / LIBRARY
    return SOURCE_TREE / LIBRARY


def mount_library(app: FastAPI, cfg: MapConfig) -> bool:
    """Serve MapLibre GL JS at /vendor/maplibre-gl/ (public, like /static); False when not installed."""
    where = library_dir(cfg)
    if not (where / "maplibre-gl.js").is_file():
        log.warning("console.map_library_missing", dir=str(where),
                    hint="run `make setup` (npm ci --prefix web) or set api.map.library_dir")
        return False
    app.mount("/vendor/maplibre-gl", StaticFiles(directory=where), name="maplibre-gl")
    return True


class MapSettings(BaseModel):
    crs: str = Field(description="The coordinate system every point and polygon of the /map endpoints is in.")
    tile_url: str = Field(description="Raster tile URL template; empty: a plain background.")
    tile_attribution: str
    tile_max_zoom: int
    library: bool = Field(description="False: MapLibre GL JS is not installed on the server (`make setup`).")
    grids: bool = Field(description="False: no grid layer is loaded.")


class MapCamera(BaseModel):
    id: str
    name: str | None
    state: str
    since: float
    last_error: str | None
    point: list[float] | None = Field(description="[lon, lat] in the map's CRS; null: the location is unusable.")


class MapIncident(BaseModel):
    incident_id: str
    event_id: str = Field(description="The incident's latest lifecycle event (open it with GET /events/{event_id}).")
    seq: int
    status: str
    category: dict[str, Any]
    grid: dict[str, Any] | None
    source: dict[str, Any]
    priority: int | None
    opened_at: str
    last_at: str
    age_s: float = Field(description="Seconds since the incident opened.")
    light: str = Field(description="green, yellow or red.")
    light_reason: str
    point: list[float] | None = Field(description="[lon, lat] in the map's CRS.")
    snapshot: str | None


class AreaRef(BaseModel):
    code: str
    name: str
    level: str
    street: str | None = None
    community: str | None = None


class MapIncidents(BaseModel):
    area: AreaRef | None = Field(description="The grid (or street, community) asked for.")
    incidents: list[MapIncident]
    truncated: bool = Field(description="True when `limit` cut the list.")


def map_router(cfg: MapConfig, grid: GridIndex | None, store_path: Path, cameras: Callable[[], list[Any]],
               locations: Locations, catalogue: Catalogue | None, library: bool,
               clocks: ClocksConfig | None = None, work_orders: Any = None) -> APIRouter:
    clocks = clocks or ClocksConfig()
    r = APIRouter(prefix="/map", tags=["map"])
    layer = MapLayer(grid, cfg.crs, cfg.simplify_m) if grid is not None else None
    if layer is not None:
        layer.warm()

    def point(lon: Any, lat: Any, crs: str, what: str) -> list[float] | None:
        try:
            x, y = convert(lon, lat, crs, cfg.crs)
        except (TypeError, ValueError) as exc:  # one bad location costs its marker, not the map
            log.warning("console.map_point_unusable", what=what, error=repr(exc))
            return None
        return [round(x, 7), round(y, 7)]

    @r.get("/config", response_model=MapSettings, summary="How the map page draws: its CRS, tiles, whether it can.")
    async def settings() -> MapSettings:
        return MapSettings(crs=cfg.crs, tile_url=cfg.tile_url, tile_attribution=cfg.tile_attribution,
                           tile_max_zoom=cfg.tile_max_zoom, library=library, grids=layer is not None)

    @r.get("/grids.geojson", response_class=Response, responses={404: {"description": "No grid layer is loaded."}},
           summary="Every polygon of the grid layer as one GeoJSON FeatureCollection in the map's CRS (gzip, ETag).")
    async def grids(request: Request) -> Response:
        if layer is None:
            raise HTTPException(404, "no grid layer is loaded in this service")
        doc = await asyncio.to_thread(layer.doc)
        headers = {"ETag": doc.etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == doc.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(doc.gzipped, media_type="application/geo+json",
                            headers=headers | {"Content-Encoding": "gzip"})
        return Response(doc.raw, media_type="application/geo+json", headers=headers)

    @r.get("/cameras", response_model=list[MapCamera], summary="Cameras with their state, placed in the map's CRS.")
    async def map_cameras() -> list[MapCamera]:
        where = locations()
        out = []
        for c in cameras():
            loc = where.get(c.id)
            out.append(MapCamera(id=c.id, name=c.name, state=c.state, since=c.since, last_error=c.last_error,
                                 point=point(*loc, what=f"camera {c.id}") if loc else None))
        return out

    @r.get("/incidents", response_model=MapIncidents, responses={404: {"description": "No such grid code."}},
           summary="Open incidents, newest first, each with its light; `grid` narrows to a grid, community or street.")
    async def incidents(grid_code: str | None = Query(None, alias="grid", description="A grid code, or a street's or community's."),
                        limit: int = Query(2000, ge=1, le=10000)) -> MapIncidents:
        area = None
        if grid_code:
            feat = grid.features.get(grid_code) if grid is not None else None
            if feat is None:
                raise HTTPException(404, f"grid: no grid, community or street with code {grid_code!r}")
            area = _area(grid, feat)
        try:
            found = await asyncio.to_thread(open_incidents, store_path, grid_code, limit + 1)
        except ValueError as exc:
            raise HTTPException(503, str(exc)) from None
        now = time.time()
        items = []
        history = (await asyncio.to_thread(work_orders.history, [i.event["incident_id"] for i in found[:limit]])
                   if work_orders is not None and found else {})
        for inc in found[:limit]:
            ev = inc.event
            age = max(0.0, now - inc.opened_at.timestamp())
            code = ev["category"]["code"]
            entry = catalogue.by_code.get(code) if catalogue is not None else None
            c = clock(opened_at=inc.opened_at.timestamp(), now=now, limits=limits_of(code, catalogue, clocks),
                      states=history.get(ev["incident_id"], []), yellow_at=clocks.yellow_at,
                      status="verified" if inc.verified else ev["status"],
                      legacy_limit_s=entry.time_limit_s if entry else None, still_present=inc.still_present)
            light, why = c.light, c.why
            loc = ev.get("location") or {}
            items.append(MapIncident(
                incident_id=ev["incident_id"], event_id=ev["event_id"], seq=inc.seq, status=ev["status"],
                category=ev["category"], grid=ev.get("grid"), source=ev["source"], priority=ev.get("priority"),
                opened_at=inc.opened_at.isoformat(), last_at=ev["occurred_at"], age_s=round(age, 1),
                light=light, light_reason=why, snapshot=(ev.get("evidence") or {}).get("snapshot"),
                point=point(loc.get("lon"), loc.get("lat"), loc.get("crs", "wgs84"), f"event {ev['event_id']}")))
        return MapIncidents(area=area, incidents=items, truncated=len(found) > limit)

    return r


def _area(index: GridIndex, feat: Any) -> AreaRef:
    names: dict[str, str | None] = {}
    for level in ("street", "community"):
        parent = (index.features.get(feat.code[: index.scheme.width_of(level)])
                  if level in index.scheme.levels and feat.level != level else None)
        names[level] = parent.name if parent is not None and parent.code != feat.code else None
    return AreaRef(code=feat.code, name=feat.name, level=feat.level, **names)
