"""Grid layer: load a city's grid polygons (GeoJSON) and find the grid a point lies in.

Grid codes are hierarchical (district → street → community → grid) and every child's code
starts with its parent's code; the digit widths differ between cities, hence `CodeScheme`.
A layer that breaks the rules is rejected at load time with the file, feature index and code
in the message: a wrong layer found at startup is cheap, one found through misrouted work
orders is not.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry import Point, shape
from shapely.ops import nearest_points
from shapely.validation import explain_validity

from bridge.events.model import Crs, GridRef
from bridge.location.coordinates import check_crs, convert, distance_m
from bridge.location.grid_cells import CellIndex

GRID_TYPES = ("city", "rural", "dedicated")  # 城市网格, 农村网格, 专属网格


class GridLayerError(ValueError):
    """A grid layer file is wrong; the message names the file and the feature (index, code)."""

    def __init__(self, problem: str, *, path: Path | str | None = None,
                 index: int | None = None, code: Any = None) -> None:
        self.problem, self.path, self.index, self.code = problem, path, index, code
        where = [str(path)] if path is not None else []
        if index is not None:
            where.append(f"feature #{index}")
        if code is not None:
            where.append(f"code {code!r}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)


class CodeScheme(BaseModel):
    """How many digits each level adds to a grid code (e.g. 6+3+3+3 = 15 digits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: list[int] = Field(
        default=[6, 3, 3, 3],
        description="Digits each level adds, top level first: district admin code, street, "
        "community, grid. A national urban standard uses 20 digits in total.",
    )
    levels: list[str] = Field(
        default=["district", "street", "community", "grid"],
        description="Level names, top first, one per segment; the last level is the grid, "
        "the only one used for point lookup.",
    )

    @model_validator(mode="after")
    def _check(self) -> CodeScheme:
        if len(self.segments) != len(self.levels):
            raise ValueError(f"segments {self.segments} and levels {self.levels} differ in length")
        if not self.levels or any(w <= 0 for w in self.segments):
            raise ValueError(f"segments {self.segments} must be non-empty positive widths")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels {self.levels} are not unique")
        return self

    @property
    def grid_level(self) -> str:
        return self.levels[-1]

    def width_of(self, level: str) -> int:
        """Total digits of a code at `level` (15 for a grid in the default scheme)."""
        if level not in self.levels:
            raise ValueError(f"unknown level {level!r}; scheme levels are {self.levels}")
        return sum(self.segments[: self.levels.index(level) + 1])

    def level_of(self, code: str) -> str | None:
        """The level whose width equals len(code), or None."""
        for level in self.levels:
            if self.width_of(level) == len(code):
                return level
        return None

    def parent_code(self, code: str) -> str | None:
        """Code of the parent (a prefix), or None for a top-level code."""
        level = self.level_of(code)
        if level is None:
            widths = [self.width_of(lv) for lv in self.levels]
            raise ValueError(f"code {code!r} has {len(code)} digits; scheme widths are {widths}")
        i = self.levels.index(level)
        return None if i == 0 else code[: self.width_of(self.levels[i - 1])]

    def validate_code(self, code: Any, level: str) -> None:
        """Raise GridLayerError (naming the code) unless `code` is a digit string for `level`."""
        if not isinstance(code, str):
            raise GridLayerError(
                f"code must be a string of digits (a JSON number loses leading zeros), "
                f"got {type(code).__name__}", code=code)
        if level not in self.levels:
            raise GridLayerError(f"level {level!r} is not one of {self.levels}", code=code)
        want = self.width_of(level)
        if not (code.isascii() and code.isdigit()) or len(code) != want:
            raise GridLayerError(
                f"level {level!r} needs exactly {want} digits, got {len(code)} characters",
                code=code)


@dataclass(frozen=True)
class GridFeature:
    """One polygon of the layer (for drawing a map and for lookup)."""

    code: str
    name: str
    level: str
    type: str | None
    geometry: Any  # shapely Polygon | MultiPolygon, in the layer's CRS


@dataclass(frozen=True)
class GridMatch:
    """The grid a point lies in, with its street and community (names found by code prefix)."""

    code: str
    name: str
    street: str | None
    community: str | None
    street_code: str | None
    community_code: str | None
    nearest: bool = False  # outside every grid; this is the nearest one within tolerance
    distance_m: float | None = None

    def to_ref(self) -> GridRef:
        return GridRef(code=self.code, name=self.name, street=self.street,
                       community=self.community, nearest=self.nearest,
                       distance_m=self.distance_m)


class GridIndex:
    """A validated grid layer with an STRtree over its grid-level polygons."""

    def __init__(self, name: str, crs: Crs, scheme: CodeScheme,
                 features: list[GridFeature], tolerance_m: float = 0.0) -> None:
        self.name, self.crs, self.scheme = name, crs, scheme
        #: A point outside every grid but within this many metres of one gets the nearest grid.
        self.tolerance_m = tolerance_m
        self.features = {f.code: f for f in features}
        self.grids = [f for f in features if f.level == scheme.grid_level]
        self._tree = shapely.STRtree([g.geometry for g in self.grids])
        self._cells = CellIndex([g.geometry for g in self.grids])
        self._codes_arr = np.array([g.code for g in self.grids], dtype=object)
        self._rank = np.argsort(np.argsort(np.array([g.code for g in self.grids])))
        self._matches: dict[str, GridMatch] = {}

    @classmethod
    def load(cls, path: Path, scheme: CodeScheme, crs: Crs = "wgs84",
             tolerance_m: float = 0.0) -> GridIndex:
        """Read and validate a GeoJSON FeatureCollection; raise GridLayerError on any fault."""
        path = Path(path)
        check_crs(crs, "layer crs")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise GridLayerError(f"cannot read GeoJSON: {e}", path=path) from e
        if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" \
                or not isinstance(doc.get("features"), list):
            raise GridLayerError("not a GeoJSON FeatureCollection with a 'features' list",
                                 path=path)
        features: list[GridFeature] = []
        first_index: dict[str, int] = {}
        for i, raw in enumerate(doc["features"]):
            feat = _parse_feature(raw, i, path, scheme)
            if feat.code in first_index:
                raise GridLayerError(f"duplicate code, already used by feature "
                                     f"#{first_index[feat.code]}", path=path, index=i,
                                     code=feat.code)
            first_index[feat.code] = i
            features.append(feat)
        # Parents may come after their children in the file, so check once all are read.
        for i, feat in enumerate(features):
            parent = scheme.parent_code(feat.code)
            if parent is not None and parent not in first_index:
                raise GridLayerError(f"parent code {parent!r} (its prefix) is not in the layer",
                                     path=path, index=i, code=feat.code)
        if not any(f.level == scheme.grid_level for f in features):
            raise GridLayerError(f"no feature has level {scheme.grid_level!r}", path=path)
        return cls(path.name, crs, scheme, features, tolerance_m)

    def resolve(self, lon: float, lat: float, crs: Crs, tolerance_m: float | None = None
                ) -> tuple[GridMatch | None, str | None]:
        """Return (match, None), or (None, reason) when the point lies in no grid.

        A point outside every grid but within `tolerance_m` metres (default: the layer's
        `tolerance_m`) of one gets the nearest grid, with `nearest=True` and `distance_m`: a
        camera on the district's edge road is still someone's responsibility.

        The point is converted into the layer's CRS first. An unknown `crs` is a programming
        or config error and raises ValueError; bad coordinates (NaN, out of range) are data
        errors and come back as a reason. On a shared edge, the grid with the lowest code wins
        (deterministic; a point exactly on a boundary is genuinely ambiguous).
        """
        check_crs(crs)
        try:
            x, y = convert(lon, lat, crs, self.crs)
        except ValueError as e:
            return None, f"cannot place point in layer {self.name}: {e}"
        owner = self._cells.one(x, y)
        if owner >= 0:  # deep inside one grid: no geometry needed
            return self._match(self.grids[owner]), None
        hits = self._tree.query(Point(x, y), predicate="intersects")
        if len(hits) == 1:  # the usual case, kept short: this runs for every event
            return self._match(self.grids[int(hits[0])]), None
        if len(hits) == 0:
            given = f"({lon}, {lat} {crs})"
            tol = self.tolerance_m if tolerance_m is None else tolerance_m
            near = self._nearest(x, y, tol) if tol > 0 else None
            if near is not None:
                return near, None
            at = given if crs == self.crs else f"{given} = ({x:.6f}, {y:.6f} {self.crs})"
            within = f" and is more than {tol:g} m from any grid" if tol > 0 else ""
            return None, f"point {at} lies outside every grid of layer {self.name}{within}"
        grid = min((self.grids[int(h)] for h in hits), key=lambda g: g.code)
        return self._match(grid), None

    def codes_many(self, lons: Any, lats: Any, crs: Crs) -> list[str | None]:
        """Grid code of each point (None outside every grid), vectorised for batches.

        One STRtree query for all points; ties on shared edges go to the lowest code as in
        `resolve`. No nearest-grid tolerance and no reasons: use `resolve` for those.
        """
        check_crs(crs)
        xs, ys = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
        if crs != self.crs:
            xs, ys = np.array([convert(x, y, crs, self.crs) for x, y in zip(xs, ys)]).T
        out = np.full(len(xs), None, dtype=object)
        owner = self._cells.many(xs, ys)
        pure = owner >= 0
        out[pure] = self._codes_arr[owner[pure]]
        rest = np.flatnonzero(~pure)  # near a boundary or outside the layer: ask the tree
        pts, grids = self._tree.query(shapely.points(xs[rest], ys[rest]), predicate="intersects")
        # Per point keep the hit with the lowest code: sort by (point, code rank), take firsts.
        order = np.lexsort((self._rank[grids], pts))
        pts, grids = pts[order], grids[order]
        first = np.ones(len(pts), dtype=bool)
        first[1:] = pts[1:] != pts[:-1]
        out[rest[pts[first]]] = self._codes_arr[grids[first]]
        return out.tolist()

    def _nearest(self, x: float, y: float, tolerance_m: float) -> GridMatch | None:
        # Candidates by planar degrees (a degree of longitude is the shorter one, so this
        # radius covers tolerance_m in every direction), then the true distance in metres.
        deg = tolerance_m / (111_000.0 * max(math.cos(math.radians(y)), 0.01))
        point = Point(x, y)
        best: tuple[float, str, GridFeature] | None = None
        for i in self._tree.query(point, predicate="dwithin", distance=deg):
            grid = self.grids[int(i)]
            _, on_grid = nearest_points(point, grid.geometry)
            d = distance_m(x, y, on_grid.x, on_grid.y)
            if d <= tolerance_m and (best is None or (d, grid.code) < best[:2]):
                best = (d, grid.code, grid)
        if best is None:
            return None
        return replace(self._match(best[2]), nearest=True, distance_m=round(best[0], 2))

    def _match(self, grid: GridFeature) -> GridMatch:
        found = self._matches.get(grid.code)
        if found is None:
            found = self._matches[grid.code] = self._match_uncached(grid)
        return found

    def _match_uncached(self, grid: GridFeature) -> GridMatch:
        names: dict[str, tuple[str | None, str | None]] = {}
        for level in ("street", "community"):
            code = (grid.code[: self.scheme.width_of(level)]
                    if level in self.scheme.levels else None)
            feat = self.features.get(code) if code else None
            names[level] = (feat.name if feat else None, code if feat else None)
        return GridMatch(code=grid.code, name=grid.name,
                         street=names["street"][0], community=names["community"][0],
                         street_code=names["street"][1], community_code=names["community"][1])


def _parse_feature(raw: Any, i: int, path: Path, scheme: CodeScheme) -> GridFeature:
    props = raw.get("properties") if isinstance(raw, dict) else None
    if not isinstance(props, dict):
        raise GridLayerError("not a GeoJSON Feature with a 'properties' object", path=path, index=i)
    code, level, name = props.get("code"), props.get("level"), props.get("name")

    def fail(problem: str) -> GridLayerError:
        return GridLayerError(problem, path=path, index=i, code=code)

    if level not in scheme.levels:
        raise fail(f"property 'level' is {level!r}, expected one of {scheme.levels}")
    try:
        scheme.validate_code(code, level)
    except GridLayerError as e:
        raise fail(e.problem) from None
    if not isinstance(name, str) or not name.strip():
        raise fail("property 'name' is missing or empty")
    kind = props.get("type")
    if kind is not None and kind not in GRID_TYPES:
        raise fail(f"property 'type' is {kind!r}, expected one of {', '.join(GRID_TYPES)}")
    try:
        geom = shape(raw["geometry"])
    except Exception as e:  # shapely raises several types for malformed GeoJSON geometry
        raise fail(f"geometry is missing or malformed: {e!r}") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise fail(f"geometry must be a non-empty Polygon or MultiPolygon, got {geom.geom_type}")
    if not geom.is_valid:
        raise fail(f"invalid polygon: {explain_validity(geom)}")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise fail(f"coordinates {geom.bounds} are not lon/lat degrees "
                   "(a projected layer, e.g. CGCS2000 Gauss-Krüger metres, must be reprojected)")
    return GridFeature(code=code, name=name, level=level, type=kind, geometry=geom)
