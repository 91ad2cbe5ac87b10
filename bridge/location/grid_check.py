"""`xueliang grid check`: does a grid layer obey 无重叠、无盲区、全覆盖 (no overlap, no gap, full cover)?

Unlike `GridIndex.load`, which stops at the first fault, this reads the whole layer and lists
every problem: bad features (codes, parents, invalid polygons), overlaps between features of
one level with their area in m², gaps inside the district boundary (the union of the top level)
and parts of a feature outside it. Areas are computed in a local metric plane around the layer.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import shapely
import structlog
from shapely.geometry import shape
from shapely.validation import explain_validity

from bridge.location.coordinates import LocalMetric
from bridge.location.grid import CodeScheme, GridFeature, GridLayerError, _parse_feature

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Problem:
    kind: str  # feature | invalid | overlap | gap | outside
    message: str
    codes: list[str] = field(default_factory=list)
    area_m2: float | None = None
    at: list[float] | None = None  # a point inside the problem area, [lon, lat]


@dataclass
class CheckReport:
    layer: str
    features: int
    levels: dict[str, int]
    types: dict[str, int]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def lines(self) -> list[str]:
        """The report for people (`xueliang grid check`): counts, each problem, the verdict."""
        levels = ", ".join(f"{n} {lv}" for lv, n in self.levels.items())
        types = ", ".join(f"{n} {t}" for t, n in sorted(self.types.items()))
        return [f"{self.layer}: {self.features} features ({levels}); grid types: {types}",
                *(f"  {p.kind}: {p.message}" + (f" at {p.at[0]}, {p.at[1]}" if p.at else "") for p in self.problems),
                f"{self.layer}: " + ("ok: no overlap, no gap, full coverage" if self.ok
                                     else f"{len(self.problems)} problem(s)")]


def check_layer(path: Path | str, scheme: CodeScheme | None = None,
                min_area_m2: float = 1.0) -> CheckReport:
    """Check every feature and the coverage of the layer at `path`.

    Overlaps and gaps smaller than `min_area_m2` are floating-point slivers of shared edges
    and are not reported. Raises GridLayerError only if the file is not a FeatureCollection.
    """
    path = Path(path)
    scheme = scheme or CodeScheme()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GridLayerError(f"cannot read GeoJSON: {e}", path=path) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise GridLayerError("not a GeoJSON FeatureCollection with a 'features' list", path=path)

    problems: list[Problem] = []
    feats: list[GridFeature] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(doc["features"]):
        feat = _lenient(raw, i, path, scheme, problems)
        if feat is None:
            continue
        if feat.code in seen:
            problems.append(Problem("feature", f"feature #{i}: duplicate code {feat.code!r}, "
                                    f"already used by feature #{seen[feat.code]}", [feat.code]))
            continue
        seen[feat.code] = i
        feats.append(feat)
    for f in feats:
        parent = scheme.parent_code(f.code)
        if parent is not None and parent not in seen:
            problems.append(Problem("feature", f"feature #{seen[f.code]} code {f.code!r}: parent "
                                    f"code {parent!r} (its prefix) is not in the layer", [f.code]))

    if feats:
        c = shapely.unary_union([f.geometry for f in feats]).centroid
        metric = LocalMetric(c.x, c.y)
        by_level: dict[str, list[GridFeature]] = {lv: [] for lv in scheme.levels}
        for f in feats:
            by_level[f.level].append(f)
        problems += _overlaps(by_level, metric, min_area_m2)
        problems += _coverage(by_level, scheme, metric, min_area_m2)

    grids = [f for f in feats if f.level == scheme.grid_level]
    return CheckReport(
        layer=str(path), features=len(doc["features"]),
        levels={lv: sum(1 for f in feats if f.level == lv) for lv in scheme.levels},
        types=dict(Counter(f.type or "untyped" for f in grids)),
        problems=problems,
    )


def _lenient(raw: Any, i: int, path: Path, scheme: CodeScheme,
             problems: list[Problem]) -> GridFeature | None:
    """Parse one feature; on a fault record it, and keep an invalid polygon (repaired) so the
    coverage checks still see its area instead of reporting a spurious gap."""
    try:
        return _parse_feature(raw, i, path, scheme)
    except GridLayerError as e:
        code = e.code if isinstance(e.code, str) else None
        invalid = e.problem.startswith("invalid polygon")
        problems.append(Problem("invalid" if invalid else "feature",
                                f"feature #{i}" + (f" code {code!r}" if code else "") + f": {e.problem}",
                                [code] if code else []))
        if not invalid:
            return None
        props = raw["properties"]
        geom = shape(raw["geometry"])
        log.info("invalid polygon repaired for coverage checks", feature=i, code=code,
                 why=explain_validity(geom))
        return GridFeature(code=code, name=props["name"], level=props["level"],
                           type=props.get("type"), geometry=shapely.make_valid(geom))


def _area_m2(geom: Any, metric: LocalMetric) -> float:
    return shapely.transform(geom, lambda a: _xy(a, metric)).area


def _xy(coords, metric: LocalMetric):
    import numpy as np

    x, y = metric.to_xy(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def _polygons(geom: Any) -> list[Any]:
    return [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]


def _at(geom: Any) -> list[float]:
    p = geom.representative_point()
    return [round(p.x, 7), round(p.y, 7)]


def _overlaps(by_level: dict[str, list[GridFeature]], metric: LocalMetric,
              min_area_m2: float) -> list[Problem]:
    out: list[Problem] = []
    for level, feats in by_level.items():
        if len(feats) < 2:
            continue
        geoms = [f.geometry for f in feats]
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        for i, j in zip(left.tolist(), right.tolist()):
            if i >= j:
                continue
            inter = geoms[i].intersection(geoms[j])
            area = _area_m2(inter, metric) if not inter.is_empty else 0.0
            if area >= min_area_m2:
                a, b = sorted((feats[i].code, feats[j].code))
                out.append(Problem("overlap", f"{level} {a} and {b} overlap by {area:.1f} m²",
                                   [a, b], round(area, 1), _at(inter)))
    return out


def _coverage(by_level: dict[str, list[GridFeature]], scheme: CodeScheme,
              metric: LocalMetric, min_area_m2: float) -> list[Problem]:
    """Gaps inside the district (top level) at every lower level, and parts outside it."""
    top = by_level[scheme.levels[0]]
    if not top:
        return [Problem("gap", f"no {scheme.levels[0]!r} feature: the boundary that must be "
                        "fully covered is unknown")]
    boundary = shapely.unary_union([f.geometry for f in top])
    out: list[Problem] = []
    for level in scheme.levels[1:]:
        feats = by_level[level]
        cover = shapely.unary_union([f.geometry for f in feats]) if feats else None
        holes = boundary if cover is None else boundary.difference(cover)
        for part in _polygons(holes):
            area = _area_m2(part, metric)
            if area >= min_area_m2:
                out.append(Problem("gap", f"gap of {area:.1f} m² inside the {scheme.levels[0]} "
                                   f"boundary not covered by any {level}", [],
                                   round(area, 1), _at(part)))
        for f in feats:
            outside = f.geometry.difference(boundary)
            area = _area_m2(outside, metric) if not outside.is_empty else 0.0
            if area >= min_area_m2:
                out.append(Problem("outside", f"{level} {f.code}: {area:.1f} m² lie outside the "
                                   f"{scheme.levels[0]} boundary", [f.code], round(area, 1),
                                   _at(outside)))
    return out
