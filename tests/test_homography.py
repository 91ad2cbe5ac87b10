"""Per-object location through a camera's image-to-ground homography (bridge.location.homography)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from bridge.events.catalogue import Catalogue
from bridge.bridge_config import LocationConfig
from bridge.events.builder import CameraContext, EventFactory
from bridge.location.coordinates import LocalMetric, distance_m
from bridge.location.grid import CodeScheme, GridIndex
from bridge.location.homography import GroundConfig, GroundProjector
from detectors.lifecycle import IncidentChange
from detectors.rules.condition import Condition
from tests.helpers import REPO
from xueliang.config import ConfigError, load_config

DEMO = REPO / "configs" / "grids" / "demo-district.geojson"
W, H = 1920, 1080
# The camera stands 10 m south of the street boundary at lon 117.02 (柳荫街道 | 华岭街道) and
# looks north: ground 40 m either side of the boundary, 20-120 m ahead, fills a trapezoid.
ORIGIN = LocalMetric(117.02, 36.655)
GROUND_M = np.float32([[-40, 20], [40, 20], [40, 120], [-40, 120]])
IMAGE_PX = np.float32([[100, 1050], [1820, 1050], [1160, 300], [760, 300]])
TRUE_G2I = cv2.getPerspectiveTransform(GROUND_M, IMAGE_PX)


def to_pixel(east_m: float, north_m: float) -> tuple[float, float]:
    p = TRUE_G2I @ np.array([east_m, north_m, 1.0])
    return float(p[0] / p[2]), float(p[1] / p[2])


def to_lonlat(east_m: float, north_m: float) -> tuple[float, float]:
    lon, lat = ORIGIN.to_lonlat(east_m, north_m)
    return float(lon), float(lat)


def control_points(spots=((-35, 25), (35, 25), (30, 110), (-30, 110), (0, 60), (-20, 80))):
    return [{"pixel": list(to_pixel(*s)), "lon": to_lonlat(*s)[0], "lat": to_lonlat(*s)[1]}
            for s in spots]


def ground(points=None, **kw) -> GroundConfig:
    return GroundConfig.model_validate(
        {"image_size": [W, H], "control_points": points or control_points(), **kw})


def bbox_standing_at(east_m: float, north_m: float) -> tuple[float, float, float, float]:
    x, y = to_pixel(east_m, north_m)  # bottom-centre of the box
    return ((x - 40) / W, (y - 200) / H, (x + 40) / W, y / H)


def test_projection_matches_ground_truth_within_a_metre():
    proj = GroundProjector(ground())
    assert float(proj.errors_m.max()) < 0.05
    for spot in [(-15, 40), (15, 40), (0, 100), (25, 70), (-38, 118)]:
        lon, lat = proj.project(*to_pixel(*spot))
        assert distance_m(lon, lat, *to_lonlat(*spot)) < 1.0, spot
    assert proj.project(W / 2, 0) is None  # sky: at or beyond the horizon


def _change(n: int, bbox) -> IncidentChange:
    cond = Condition(rule_id="r", zone=None, since=0.0, score=0.9, bbox=bbox)
    return IncidentChange(status="opened", incident_id=f"inc-{n}", camera_id="cam", rule_id="r",
                          zone=None, at=0.0, opened_at=0.0, condition=cond)


def test_objects_either_side_of_a_boundary_land_in_different_grids():
    factory = EventFactory(GridIndex.load(DEMO, CodeScheme()), Catalogue.load())
    camera_at = LocationConfig(lon=117.02, lat=36.655, crs="wgs84")
    ctx = CameraContext(camera_id="cam", location=camera_at, categories={"r": "market.road-occupation"},
                        model="yolov8n", config_hash="x", ground=GroundProjector(ground()))
    t = datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    west = factory.make(_change(1, bbox_standing_at(-12, 50)), ctx, t, None)
    east = factory.make(_change(2, bbox_standing_at(12, 50)), ctx, t, None)
    assert west.grid.code == "990001002002002"  # 荫塘社区第2网格, west of lon 117.02
    assert east.grid.code == "990001003002002"  # 华苑农贸市场专属网格, east of it
    for ev, spot in ((west, (-12, 50)), (east, (12, 50))):
        assert ev.location.method == "object"
        assert distance_m(ev.location.lon, ev.location.lat, *to_lonlat(*spot)) < 1.0
    # without control points: the camera's own position, whatever the box
    plain = CameraContext(camera_id="cam", location=camera_at, categories={"r": "market.road-occupation"},
                          model="yolov8n", config_hash="x")
    ev = factory.make(_change(3, bbox_standing_at(-12, 50)), plain, t, None)
    assert (ev.location.lon, ev.location.lat, ev.location.method) == (117.02, 36.655, "camera")


@pytest.mark.parametrize("mutate, match", [
    (lambda pts: pts[:3], "at least 4"),
    (lambda pts: [{**p, "pixel": [100 + 50 * i, 500]} for i, p in enumerate(pts[:4])],
     "pixel positions lie on one line"),
    (lambda pts: [pts[0], pts[1], {**pts[2], "lon": pts[3]["lon"]}, pts[3], *pts[4:]],
     r"control_points\[2\]: lies"),
    (lambda pts: [{**pts[0], "pixel": [2000, 10]}, *pts[1:]], r"control_points\[0\].pixel .* outside"),
])
def test_bad_control_points_are_refused_naming_the_point(mutate, match):
    with pytest.raises(ValidationError, match=match):
        ground(mutate(control_points()))


def test_config_error_names_camera_field(tmp_path):
    doc = yaml.safe_load((REPO / "configs" / "examples" / "table-dwell.yaml").read_text())
    doc["cameras"][0]["url"] = str(REPO / "configs" / "media" / "table-stays.mp4")
    doc["grid"]["path"] = str(DEMO)
    pts = control_points()
    pts[4]["lat"] += 0.001  # 111 m off
    doc["cameras"][0]["ground"] = {"image_size": [W, H], "control_points": pts}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    text = str(exc.value)
    assert "cameras[0].ground" in text and "control_points[4]: lies" in text
    doc["cameras"][0]["ground"]["control_points"] = control_points()
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert load_config(path).cameras[0].ground.image_size == (W, H)
