"""The grid layer as one GeoJSON document for the console's map, built once and kept gzipped.

Every polygon (district, streets, communities, grids) is converted into the map's coordinate
system, simplified for drawing (lookup keeps the exact polygons) and rounded to 1e-6 degrees
(~0.1 m); each feature carries its street and community names and a label point (`lx`, `ly`).
10,000 grids make ~3 MB of JSON, ~0.5 MB gzipped: sent once, panning and zooming never ask again.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from shapely.geometry import MultiPolygon, Polygon

from bridge.location.coordinates import convert
from bridge.location.grid import GridFeature, GridIndex

_DEG_PER_M = 1 / 111_000.0


@dataclass(frozen=True)
class LayerDoc:
    raw: bytes
    gzipped: bytes
    etag: str
    features: int


class MapLayer:
    """Builds the document on first use (in a worker thread: it takes a second for 10,000 grids)."""

    def __init__(self, index: GridIndex, crs: str, simplify_m: float) -> None:
        self.index, self.crs, self.simplify_m = index, crs, simplify_m
        self._doc: LayerDoc | None = None
        self._lock = threading.Lock()
        self._converted: dict[tuple[float, float], list[float]] = {}  # neighbours share their vertices

    def warm(self) -> None:
        """Build the document in a background thread now, so the first map page does not wait."""
        threading.Thread(target=self.doc, name="map-layer", daemon=True).start()

    def doc(self) -> LayerDoc:
        with self._lock:
            if self._doc is None:
                self._doc = self._build()
                self._converted.clear()
            return self._doc

    def _point(self, x: float, y: float) -> list[float]:
        if self.index.crs == self.crs:
            return [round(x, 6), round(y, 6)]
        found = self._converted.get((x, y))
        if found is None:
            cx, cy = convert(x, y, self.index.crs, self.crs)
            found = self._converted[(x, y)] = [round(cx, 6), round(cy, 6)]
        return found

    def _rings(self, poly: Polygon) -> list[list[list[float]]]:
        return [[self._point(x, y) for x, y in ring.coords] for ring in (poly.exterior, *poly.interiors)]

    def _feature(self, f: GridFeature) -> dict[str, Any]:
        geom = f.geometry
        if self.simplify_m > 0:
            geom = geom.simplify(self.simplify_m * _DEG_PER_M, preserve_topology=True)
        if isinstance(geom, MultiPolygon):
            geometry = {"type": "MultiPolygon", "coordinates": [self._rings(p) for p in geom.geoms]}
        else:
            geometry = {"type": "Polygon", "coordinates": self._rings(geom)}
        label = self._point(*f.geometry.representative_point().coords[0])
        props: dict[str, Any] = {"code": f.code, "name": f.name, "level": f.level, "lx": label[0], "ly": label[1]}
        if f.type:
            props["type"] = f.type
        for level in ("street", "community"):
            if level in self.index.scheme.levels and f.level != level:
                parent = self.index.features.get(f.code[: self.index.scheme.width_of(level)])
                if parent is not None and parent.code != f.code:
                    props[level] = parent.name
        return {"type": "Feature", "properties": props, "geometry": geometry}

    def _build(self) -> LayerDoc:
        # Parents first, so outlines of streets are drawn under their grids' fills in file order too.
        order = {level: i for i, level in enumerate(self.index.scheme.levels)}
        feats = [self._feature(f) for f in sorted(self.index.features.values(), key=lambda f: (order[f.level], f.code))]
        xs = [p[0] for ft in feats for p in _points(ft["geometry"])]
        ys = [p[1] for ft in feats for p in _points(ft["geometry"])]
        grids = sum(1 for f in self.index.features.values() if f.level == self.index.scheme.grid_level)
        doc = {"type": "FeatureCollection", "bbox": [min(xs), min(ys), max(xs), max(ys)],
               "xueliang": {"layer": self.index.name, "crs": self.crs, "grids": grids,
                            "levels": self.index.scheme.levels},
               "features": feats}
        raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        etag = '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'
        return LayerDoc(raw, gzip.compress(raw, compresslevel=6, mtime=0), etag, len(feats))


def _points(geometry: dict[str, Any]):
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    for poly in polys:
        for ring in poly:
            yield from ring
