"""`xueliang grid resolve` prints the grid of a point as JSON, converting its CRS first."""
import json

from bridge.location.coordinates import convert
from tests.helpers import xueliang

CONFIG = "configs/demo.yaml"


def test_resolve_inside_a_grid():
    res = xueliang("grid", "resolve", "-c", CONFIG, "117.015", "36.665")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["grid"]["code"] == "990001002002001"
    assert doc["grid"]["street"] and doc["grid"]["community"]


def test_resolve_gcj02_point_is_converted():
    lon, lat = convert(117.005, 36.655, "wgs84", "gcj02")
    res = xueliang("grid", "resolve", "-c", CONFIG, f"{lon:.7f}", f"{lat:.7f}", "--crs", "gcj02")
    assert json.loads(res.stdout)["grid"]["code"] == "990001001002002"


def test_resolve_outside_every_grid_gives_null_and_reason():
    res = xueliang("grid", "resolve", "-c", CONFIG, "116.0", "36.0")
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    assert doc["grid"] is None and "outside every grid" in doc["reason"]
