"""`xueliang grid check` (bridge.location.grid_check) and the nearest-grid tolerance (bridge.location.grid)."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from bridge.location.grid import CodeScheme, GridIndex
from bridge.location.grid_check import check_layer
from tests.helpers import REPO, xueliang

DEMO = REPO / "configs" / "grids" / "demo-district.geojson"
M_PER_DEG = math.radians(1) * 6371008.8


def _demo() -> dict:
    return json.loads(DEMO.read_text(encoding="utf-8"))


def _feature(doc: dict, code: str) -> dict:
    return next(f for f in doc["features"] if f["properties"]["code"] == code)


def _box(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _write(tmp_path: Path, doc: dict, name: str = "planted.geojson") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return p


def test_demo_layer_passes():
    report = check_layer(DEMO)
    assert report.ok, report.problems
    assert report.levels == {"district": 1, "street": 3, "community": 6, "grid": 9}
    assert report.types == {"city": 8, "dedicated": 1}


def test_planted_overlap_gap_and_invalid_polygon_found(tmp_path):
    doc = _demo()
    # overlap: Quannan grid 1 (117.00-117.01) reaches 0.001 deg east into Yintang grid 1
    _feature(doc, "990001001002001")["geometry"] = _box(117.0, 36.66, 117.011, 36.67)
    # gap: Lingshang grid 1 loses its northern 0.002 deg (its community still covers it)
    _feature(doc, "990001003001001")["geometry"] = _box(117.02, 36.67, 117.03, 36.678)
    # invalid: a bow-tie replaces Huayuan grid 1
    _feature(doc, "990001003002001")["geometry"] = {"type": "Polygon", "coordinates": [[
        [117.02, 36.66], [117.03, 36.67], [117.03, 36.66], [117.02, 36.67], [117.02, 36.66]]]}
    report = check_layer(_write(tmp_path, doc))
    assert not report.ok
    kinds = {p.kind: p for p in report.problems}
    overlap = [p for p in report.problems if p.kind == "overlap"]
    assert [p.codes for p in overlap] == [["990001001002001", "990001002002001"]]
    want = 0.001 * M_PER_DEG * math.cos(math.radians(36.665)) * 0.01 * M_PER_DEG
    assert overlap[0].area_m2 == pytest.approx(want, rel=0.01)
    gaps = [p for p in report.problems if p.kind == "gap"]
    # the planted hole, plus the triangles the bow-tie leaves uncovered
    hole = [p for p in gaps if 36.678 < p.at[1] < 36.68 and 117.02 < p.at[0] < 117.03]
    assert len(hole) == 1
    want = 0.01 * M_PER_DEG * math.cos(math.radians(36.679)) * 0.002 * M_PER_DEG
    assert hole[0].area_m2 == pytest.approx(want, rel=0.01)
    assert "not covered by any grid" in hole[0].message
    assert kinds["invalid"].codes == ["990001003002001"]
    assert "Self-intersection" in kinds["invalid"].message


def test_outside_district_and_missing_parent_reported(tmp_path):
    doc = _demo()
    _feature(doc, "990001003002002")["geometry"] = _box(117.02, 36.649, 117.03, 36.66)
    extra = copy.deepcopy(_feature(doc, "990001003002002"))
    extra["properties"]["code"] = "990001009001001"
    extra["geometry"] = _box(117.0, 36.60, 117.001, 36.601)
    doc["features"].append(extra)
    report = check_layer(_write(tmp_path, doc))
    outside = {tuple(p.codes) for p in report.problems if p.kind == "outside"}
    assert ("990001003002002",) in outside and ("990001009001001",) in outside
    assert any("parent code '990001009001'" in p.message for p in report.problems)


def test_cli_exit_codes_and_json(tmp_path):
    ok = xueliang("grid", "check", str(DEMO))
    assert ok.returncode == 0, ok.stderr
    assert "ok: no overlap, no gap, full coverage" in ok.stdout
    doc = _demo()
    _feature(doc, "990001001002001")["geometry"] = _box(117.0, 36.66, 117.011, 36.67)
    bad = xueliang("grid", "check", "--json", str(_write(tmp_path, doc)))
    assert bad.returncode == 1, bad.stderr
    out = json.loads(bad.stdout)
    assert out["ok"] is False and [p["kind"] for p in out["problems"]] == ["overlap"]
    missing = xueliang("grid", "check", str(tmp_path / "nope.geojson"))
    assert missing.returncode == 2 and "nope.geojson" in missing.stderr


def test_nearest_grid_within_tolerance_is_flagged():
    layer = GridIndex.load(DEMO, CodeScheme(), tolerance_m=100)
    lon = 117.03 + 40 / (M_PER_DEG * math.cos(math.radians(36.655)))  # 40 m east of the edge
    m, reason = layer.resolve(lon, 36.655, "wgs84")
    assert reason is None and m.code == "990001003002002"
    assert m.nearest and m.distance_m == pytest.approx(40, abs=0.5)
    ref = m.to_ref()
    assert ref.nearest is True and ref.distance_m == m.distance_m
    # inside a grid: not flagged
    inside, _ = layer.resolve(117.025, 36.655, "wgs84")
    assert not inside.nearest and inside.distance_m is None
    # beyond the tolerance: null with a reason that says so
    m, reason = layer.resolve(lon, 36.655, "wgs84", tolerance_m=30)
    assert m is None and "more than 30 m from any grid" in reason
    # default layer: no tolerance
    m, reason = GridIndex.load(DEMO, CodeScheme()).resolve(lon, 36.655, "wgs84")
    assert m is None and "outside every grid" in reason
