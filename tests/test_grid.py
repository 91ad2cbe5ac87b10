"""Grid layer loading, validation and point lookup (bridge.location.grid)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from shapely import unary_union

from bridge.events.model import GridRef
from bridge.location.coordinates import convert
from bridge.location.grid import CodeScheme, GridIndex, GridLayerError, GridMatch

DEMO = Path(__file__).resolve().parents[1] / "configs" / "grids" / "demo-district.geojson"


@pytest.fixture(scope="module")
def demo() -> GridIndex:
    return GridIndex.load(DEMO, CodeScheme())


# --- the demo layer -------------------------------------------------------------------------

def test_demo_layer_loads(demo):
    assert demo.name == "demo-district.geojson"
    assert demo.crs == "wgs84"
    assert len(demo.features) == 1 + 3 + 6 + 9
    assert len(demo.grids) == 9
    assert all(len(g.code) == 15 and g.code.startswith("990001") for g in demo.grids)
    assert [g.code for g in demo.grids if g.type == "dedicated"] == ["990001003002002"]
    assert {g.type for g in demo.grids} == {"city", "dedicated"}


def test_demo_layer_is_seamless(demo):
    """No overlap, no gaps: every parent is exactly the union of its children."""
    by_level: dict[str, list] = {}
    for f in demo.features.values():
        by_level.setdefault(f.level, []).append(f)
    for parent_level, child_level in [("district", "street"), ("street", "community"),
                                      ("community", "grid")]:
        for parent in by_level[parent_level]:
            kids = [f.geometry for f in by_level[child_level]
                    if f.code.startswith(parent.code)]
            assert kids, parent.code
            assert unary_union(kids).symmetric_difference(parent.geometry).area < 1e-12
            assert sum(k.area for k in kids) == pytest.approx(parent.geometry.area, rel=1e-9)


def test_example_points_resolve(demo):
    m, reason = demo.resolve(117.015, 36.665, "wgs84")
    assert reason is None
    assert m == GridMatch(code="990001002002001", name="荫塘社区第1网格", street="柳荫街道",
                          community="荫塘社区", street_code="990001002",
                          community_code="990001002002")
    m, reason = demo.resolve(117.005, 36.655, "wgs84")
    assert reason is None
    assert (m.code, m.street, m.community) == ("990001001002002", "清泉街道", "泉南社区")
    assert (m.street_code, m.community_code) == ("990001001", "990001001002")


def test_to_ref(demo):
    m, _ = demo.resolve(117.005, 36.655, "wgs84")
    assert m.to_ref() == GridRef(code="990001001002002", name="泉南社区第2网格",
                                 street="清泉街道", community="泉南社区")


def test_point_outside_has_reason_naming_layer(demo):
    m, reason = demo.resolve(117.05, 36.70, "wgs84")
    assert m is None
    assert "outside every grid" in reason and "demo-district.geojson" in reason
    assert "117.05" in reason


def test_gcj02_point_is_converted_before_lookup(demo):
    # WGS-84 point ~130 m west of the east edge of grid 990001002002001 (lon 117.01-117.02);
    # the GCJ-02 offset here is ~500 m east, so the raw GCJ-02 numbers fall in another grid.
    wlon, wlat = 117.0185, 36.6605
    want, _ = demo.resolve(wlon, wlat, "wgs84")
    assert want.code == "990001002002001"
    glon, glat = convert(wlon, wlat, "wgs84", "gcj02")
    got, reason = demo.resolve(glon, glat, "gcj02")
    assert reason is None and got == want
    wrong, _ = demo.resolve(glon, glat, "wgs84")  # the mistake conversion prevents
    assert wrong is None or wrong.code != want.code


def test_layer_in_gcj02_converts_wgs84_points(tmp_path):
    """A layer drawn on an Amap base map: its polygons are GCJ-02, points arrive as WGS-84."""
    doc = json.loads(DEMO.read_text(encoding="utf-8"))
    for f in doc["features"]:
        ring = f["geometry"]["coordinates"][0]
        f["geometry"]["coordinates"] = [[list(convert(x, y, "wgs84", "gcj02")) for x, y in ring]]
    path = tmp_path / "demo-gcj.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    layer = GridIndex.load(path, CodeScheme(), crs="gcj02")
    m, _ = layer.resolve(117.015, 36.665, "wgs84")
    assert m.code == "990001002002001"


def test_point_on_shared_edge_is_deterministic(demo):
    m, _ = demo.resolve(117.01, 36.665, "wgs84")  # edge between streets 001 and 002
    assert m.code == "990001001002001"


def test_bad_coordinates_give_reason_unknown_crs_raises(demo):
    m, reason = demo.resolve(float("nan"), 36.66, "wgs84")
    assert m is None and "demo-district.geojson" in reason and "finite" in reason
    with pytest.raises(ValueError, match="unknown crs"):
        demo.resolve(117.015, 36.665, "WGS84")


# --- code scheme ----------------------------------------------------------------------------

def test_code_scheme_widths_and_parents():
    s = CodeScheme()
    assert [s.width_of(lv) for lv in s.levels] == [6, 9, 12, 15]
    assert s.parent_code("990001001002003") == "990001001002"
    assert s.parent_code("990001001") == "990001"
    assert s.parent_code("990001") is None
    with pytest.raises(ValueError, match="unknown level 'village'"):
        s.width_of("village")
    with pytest.raises(ValueError, match="13 digits"):
        s.parent_code("9900010010020")
    with pytest.raises(GridLayerError, match="'99000100100200'.*needs exactly 15 digits"):
        s.validate_code("99000100100200", "grid")
    with pytest.raises(GridLayerError, match="string of digits"):
        s.validate_code(990001001002003, "grid")
    custom = CodeScheme(segments=[6, 3, 3, 4])
    assert custom.width_of("grid") == 16


def test_code_scheme_rejects_mismatched_levels():
    with pytest.raises(ValidationError, match="differ in length"):
        CodeScheme(segments=[6, 3, 3], levels=["district", "street", "community", "grid"])


# --- bad layers -----------------------------------------------------------------------------

def _box(x0, y0, x1, y1):
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _feature(code, level, geometry=None):
    return {"type": "Feature",
            "properties": {"code": code, "level": level, "name": f"{level} {code}"},
            "geometry": geometry or _box(117.0, 36.65, 117.01, 36.66)}


def _minimal():
    return {"type": "FeatureCollection", "features": [
        _feature("990001", "district"),
        _feature("990001001", "street"),
        _feature("990001001001", "community"),
        _feature("990001001001001", "grid"),
    ]}


def _load(tmp_path, doc, name="bad.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return GridIndex.load(path, CodeScheme())


def test_minimal_layer_loads(tmp_path):
    layer = _load(tmp_path, _minimal(), "ok.geojson")
    assert [g.code for g in layer.grids] == ["990001001001001"]


def test_wrong_code_width(tmp_path):
    doc = _minimal()
    doc["features"][3]["properties"]["code"] = "99000100100101"  # 14 digits
    with pytest.raises(GridLayerError) as e:
        _load(tmp_path, doc)
    msg = str(e.value)
    assert "bad.geojson" in msg and "feature #3" in msg and "'99000100100101'" in msg
    assert "15 digits" in msg


def test_child_without_parent(tmp_path):
    doc = _minimal()
    doc["features"].append(_feature("990001001002001", "grid", _box(117.0, 36.66, 117.01, 36.67)))
    with pytest.raises(GridLayerError) as e:
        _load(tmp_path, doc)
    msg = str(e.value)
    assert "feature #4" in msg and "'990001001002001'" in msg and "'990001001002'" in msg


def test_parent_may_come_after_child(tmp_path):
    doc = _minimal()
    doc["features"].reverse()
    assert len(_load(tmp_path, doc).grids) == 1


def test_duplicate_code(tmp_path):
    doc = _minimal()
    doc["features"].append(copy.deepcopy(doc["features"][3]))
    with pytest.raises(GridLayerError) as e:
        _load(tmp_path, doc)
    msg = str(e.value)
    assert "duplicate" in msg and "feature #4" in msg and "#3" in msg
    assert "'990001001001001'" in msg


def test_self_intersecting_polygon(tmp_path):
    doc = _minimal()
    bowtie = {"type": "Polygon", "coordinates": [[[117.0, 36.65], [117.01, 36.66],
                                                  [117.01, 36.65], [117.0, 36.66],
                                                  [117.0, 36.65]]]}
    doc["features"][3]["geometry"] = bowtie
    with pytest.raises(GridLayerError) as e:
        _load(tmp_path, doc)
    msg = str(e.value)
    assert "feature #3" in msg and "invalid polygon" in msg and "Self-intersection" in msg


@pytest.mark.parametrize("mutate,match", [
    (lambda f: f["properties"].update(level="village"), "'level' is 'village'"),
    (lambda f: f["properties"].update(code=990001001001001), "string of digits"),
    (lambda f: f["properties"].update(type="school"), "'type' is 'school'"),
    (lambda f: f["properties"].update(name=""), "'name'"),
    (lambda f: f.update(geometry={"type": "Point", "coordinates": [117.0, 36.65]}), "Point"),
    (lambda f: f.update(geometry=_box(500000, 4000000, 501000, 4001000)), "not lon/lat"),
])
def test_other_feature_faults_name_the_feature(tmp_path, mutate, match):
    doc = _minimal()
    mutate(doc["features"][3])
    with pytest.raises(GridLayerError, match=match) as e:
        _load(tmp_path, doc)
    assert "bad.geojson" in str(e.value) and "feature #3" in str(e.value)


def test_not_a_feature_collection(tmp_path):
    with pytest.raises(GridLayerError, match="bad.geojson.*FeatureCollection"):
        _load(tmp_path, {"type": "Feature"})
    (tmp_path / "broken.geojson").write_text("{", encoding="utf-8")
    with pytest.raises(GridLayerError, match="broken.geojson.*cannot read"):
        GridIndex.load(tmp_path / "broken.geojson", CodeScheme())


def test_cell_index_answers_exactly_like_the_tree_including_shared_edges():
    """The cell shortcut must never change an answer: random points, and points on every edge
    and corner of the demo grids (ties go to the lowest code either way)."""
    import numpy as np
    import shapely

    index = GridIndex.load(DEMO, CodeScheme())
    assert index._cells.pure_fraction > 0.5
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shapely.total_bounds([g.geometry for g in index.grids])
    xs = np.concatenate([rng.uniform(minx - 0.002, maxx + 0.002, 5000),
                         np.round(rng.uniform(minx, maxx, 500), 2)])  # on the 0.01° grid lines
    ys = np.concatenate([rng.uniform(miny - 0.002, maxy + 0.002, 5000),
                         np.round(rng.uniform(miny, maxy, 500), 2)])
    tree = index._tree
    expected = []
    for x, y in zip(xs, ys):
        hits = tree.query(shapely.Point(x, y), predicate="intersects")
        expected.append(min((index.grids[int(h)].code for h in hits), default=None))
    assert index.codes_many(xs, ys, "wgs84") == expected
    singles = [index.resolve(float(x), float(y), "wgs84")[0] for x, y in zip(xs, ys)]
    assert [m.code if m else None for m in singles] == expected
