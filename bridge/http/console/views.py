"""Read-only views the console draws from: the grid layer as polygons, one event with its incident."""
from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from shapely.geometry import MultiPolygon, Polygon

from bridge.location.coordinates import convert
from bridge.location.grid import GridIndex
from bridge.store.outbox import EventStore
from bridge.http.plate_access import visible

log = structlog.get_logger(__name__)


class GridPolygon(BaseModel):
    code: str = Field(examples=["990001001002002"])
    name: str = Field(examples=["泉南二网格"])
    level: str = Field(examples=["grid"])
    type: str | None = None
    rings: list[list[list[float]]] = Field(description="Outer rings, [lon, lat] in WGS-84.",
                                           examples=[[[[117.0, 36.65], [117.01, 36.65], [117.01, 36.66], [117.0, 36.65]]]])


class GridLayer(BaseModel):
    name: str = Field(examples=["demo-district.geojson"])
    crs: str = Field("wgs84", description="Coordinates are always WGS-84 here, whatever the layer's own CRS.")
    bbox: list[float] = Field(description="[min lon, min lat, max lon, max lat].")
    features: list[GridPolygon]


class EventDetail(BaseModel):
    seq: int
    event: dict[str, Any]
    lifecycle: list[dict[str, Any]] = Field(description="Every event of the incident, oldest first, each with `seq`.")
    sources: list[dict[str, Any]] = Field(description="The distinct sources that reported the incident.")
    point_wgs84: list[float] | None = Field(description="The event's location as [lon, lat] in WGS-84, for the map.")


def layer_of(index: GridIndex) -> GridLayer:
    feats = []
    for f in index.features.values():
        geoms = list(f.geometry.geoms) if isinstance(f.geometry, MultiPolygon) else [f.geometry]
        rings = []
        for g in geoms:
            if isinstance(g, Polygon):
                rings.append([list(convert(x, y, index.crs, "wgs84")) if index.crs != "wgs84" else [x, y]
                              for x, y in g.exterior.coords])
        feats.append(GridPolygon(code=f.code, name=f.name, level=f.level, type=f.type, rings=rings))
    xs = [p[0] for f in feats for r in f.rings for p in r]
    ys = [p[1] for f in feats for r in f.rings for p in r]
    return GridLayer(name=index.name, bbox=[min(xs), min(ys), max(xs), max(ys)], features=feats)


def views_router(store: EventStore, grid: GridIndex | None) -> APIRouter:
    r = APIRouter(tags=["console"])
    layer = layer_of(grid) if grid is not None else None

    @r.get("/grids", response_model=GridLayer, responses={404: {"description": "No grid layer is loaded."}},
           summary="The grid layer's polygons (district, streets, communities, grids) for drawing a map.")
    async def grids() -> GridLayer:
        if layer is None:
            raise HTTPException(404, "no grid layer is loaded in this service")
        return layer

    @r.get("/events/{event_id}", response_model=EventDetail, responses={404: {"description": "No such event."}},
           summary="One event with its incident's whole lifecycle and sources.")
    async def event_detail(event_id: str, request: Request) -> EventDetail:
        row = await store.get(event_id)
        if row is None:
            raise HTTPException(404, f"event_id: no event {event_id!r}")
        life = await store.incident(row.event["incident_id"])
        sources = list({str(sorted(e.event["source"].items())): e.event["source"] for e in life}.values())
        loc = row.event.get("location") or {}
        point = None
        try:
            point = list(convert(loc["lon"], loc["lat"], loc.get("crs", "wgs84"), "wgs84"))
        except (KeyError, ValueError) as exc:  # a malformed location only costs the map its dot
            log.warning("console.event_location_unusable", event_id=event_id, error=repr(exc))
        show = visible(request)
        return EventDetail(seq=row.seq, event=show(row.event), lifecycle=[show(e.event) | {"seq": e.seq} for e in life],
                           sources=sources, point_wgs84=point)

    return r
