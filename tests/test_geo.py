"""Coordinate conversion (bridge.location.coordinates).

Reference values: no surveyed WGS-84/GCJ-02 ground-truth pairs are used here (we could not
cite one with certainty; e.g. the often-quoted Tiananmen coordinates are different POIs, not a
conversion pair). Instead we check against test vectors published by two independent
open-source implementations of the same algorithm, at the tolerance they assert themselves:
  * googollee/eviltransform (MIT), go/transform_test.go and python/test.py: WGS-84 -> GCJ-02
    for Shanghai, Shenzhen, Beijing (forward to ~1e-6 deg, exact inverse within 0.5 m);
  * hujiulong/gcoord (MIT), test/unit/crs/{WGS84,GCJ02,BD09}.spec.ts: the point (123, 45)
    in every direction, to 5 decimals (|diff| < 5e-6 deg).
Plus the known property (DOMAIN.md) that the GCJ-02 offset in Beijing is 100-700 m.
"""
from __future__ import annotations

import math
import warnings

import pytest

from bridge.location.coordinates import convert


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (mean Earth radius); plenty for sub-km checks."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


CHINA_POINTS = [  # (lon, lat) WGS-84
    (116.391280, 39.907380),  # Beijing
    (117.015, 36.665),  # Jinan area, the demo layer
    (121.5272106, 31.1774276),  # Shanghai
    (113.912316, 22.543847),  # Shenzhen
    (87.6168, 43.8256),  # Urumqi (far west, larger offset terms)
]

# eviltransform: (wgsLat, wgsLng, gcjLat, gcjLng)
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # beijing
]

# gcoord: (src, dst, (lon, lat) in, (lon, lat) expected)
GCOORD = [
    ("wgs84", "gcj02", (123, 45), (123.00607541, 45.00197815)),
    ("gcj02", "wgs84", (123, 45), (122.99395597, 44.99804071)),
    ("gcj02", "bd09", (123, 45), (123.00636499, 45.00636899)),
    ("wgs84", "bd09", (123, 45), (123.0124491, 45.0083293)),
    ("bd09", "gcj02", (123, 45), (122.99363304, 44.99365430)),
    ("bd09", "wgs84", (123, 45), (122.98762210, 44.99171540)),
]


@pytest.mark.parametrize("lon,lat", CHINA_POINTS)
def test_wgs_gcj_round_trip_within_1m(lon, lat):
    glon, glat = convert(lon, lat, "wgs84", "gcj02")
    assert haversine_m(lon, lat, glon, glat) > 50  # the offset really was applied
    back = convert(glon, glat, "gcj02", "wgs84")
    assert haversine_m(lon, lat, *back) < 1.0


@pytest.mark.parametrize("lon,lat", CHINA_POINTS)
def test_bd09_round_trips_within_1m(lon, lat):
    blon, blat = convert(lon, lat, "wgs84", "bd09")
    assert haversine_m(lon, lat, *convert(blon, blat, "bd09", "wgs84")) < 1.0
    glon, glat = convert(lon, lat, "wgs84", "gcj02")
    assert haversine_m(glon, glat, *convert(glon, glat, "gcj02", "bd09")) > 50
    assert haversine_m(glon, glat, *convert(*convert(glon, glat, "gcj02", "bd09"),
                                            "bd09", "gcj02")) < 1.0


@pytest.mark.parametrize("wlat,wlon,glat,glon", EVILTRANSFORM)
def test_eviltransform_vectors(wlat, wlon, glat, glon):
    lon, lat = convert(wlon, wlat, "wgs84", "gcj02")
    assert lon == pytest.approx(glon, abs=1e-6) and lat == pytest.approx(glat, abs=1e-6)
    assert haversine_m(wlon, wlat, *convert(glon, glat, "gcj02", "wgs84")) < 0.5


@pytest.mark.parametrize("src,dst,given,expected", GCOORD)
def test_gcoord_vectors(src, dst, given, expected):
    lon, lat = convert(*given, src, dst)
    assert lon == pytest.approx(expected[0], abs=5e-6)
    assert lat == pytest.approx(expected[1], abs=5e-6)


def test_beijing_gcj_offset_is_100_to_700_m():
    lon, lat = 116.391280, 39.907380  # near Tiananmen, WGS-84 (used only as a Beijing point)
    assert 100 < haversine_m(lon, lat, *convert(lon, lat, "wgs84", "gcj02")) < 700


def test_cgcs2000_is_treated_as_wgs84():
    assert convert(117.015, 36.665, "cgcs2000", "wgs84") == (117.015, 36.665)
    assert convert(117.015, 36.665, "cgcs2000", "gcj02") == convert(117.015, 36.665,
                                                                    "wgs84", "gcj02")


def test_same_crs_is_identity():
    for crs in ("wgs84", "gcj02", "bd09", "cgcs2000"):
        assert convert(117.015, 36.665, crs, crs) == (117.015, 36.665)


def test_outside_china_gcj_offset_not_applied_both_ways():
    # prcoords returns non-Chinese points as-is (with a warning); the inverse must agree.
    with pytest.warns(UserWarning, match="outside China"):
        assert convert(2.2945, 48.8584, "wgs84", "gcj02") == (2.2945, 48.8584)
    with pytest.warns(UserWarning, match="outside China"):
        assert convert(2.2945, 48.8584, "gcj02", "wgs84") == (2.2945, 48.8584)


@pytest.mark.parametrize("src,dst", [("wgs84", "bd09"), ("bd09", "wgs84"), ("gcj02", "bd09"), ("bd09", "gcj02"),
                                     ("cgcs2000", "bd09"), ("bd09", "cgcs2000")])
def test_outside_china_bd09_is_wgs84_as_the_warning_says(src, dst):
    # Baidu's own maps: abroad BD-09 coordinates are WGS-84. The warning and the result agree.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert convert(2.2945, 48.8584, src, dst) == (2.2945, 48.8584)
    assert len(caught) == 1 and "outside China" in str(caught[0].message)


def test_cli_geo_convert_outside_china_warns_once_and_does_not_shift():
    import json

    from tests.helpers import xueliang

    res = xueliang("geo", "convert", "--from", "wgs84", "--to", "bd09", "2.2945", "48.8584")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["lon"], out["lat"]) == (2.2945, 48.8584)
    assert res.stderr.count("outside China") == 1


def test_inside_china_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert(117.015, 36.665, "bd09", "wgs84")


@pytest.mark.parametrize("args,match", [
    ((117.0, 36.6, "wgs-84", "gcj02"), "unknown source crs 'wgs-84'"),
    ((117.0, 36.6, "wgs84", "epsg:4326"), "unknown target crs 'epsg:4326'"),
    ((36.6, 117.0, "wgs84", "gcj02"), "out of range"),  # lat/lon swapped
    ((181.0, 36.6, "wgs84", "gcj02"), "out of range"),
    ((500000.0, 4000000.0, "cgcs2000", "wgs84"), "out of range"),  # projected metres
    ((float("nan"), 36.6, "wgs84", "gcj02"), "not a finite"),
])
def test_bad_input_raises_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        convert(*args)


def test_cli_geo_convert_prints_json_within_1m():
    import json

    from tests.helpers import xueliang

    wlat, wlon, glat, glon = EVILTRANSFORM[0]  # Shanghai, published pair
    res = xueliang("geo", "convert", "--from", "gcj02", "--to", "wgs84", str(glon), str(glat))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["crs"] == "wgs84" and out["from"] == {"lon": glon, "lat": glat, "crs": "gcj02"}
    assert haversine_m(out["lon"], out["lat"], wlon, wlat) < 1.0
    src, dst, (lon, lat), (elon, elat) = GCOORD[5]  # bd09 -> wgs84
    res = xueliang("geo", "convert", "--from", src, "--to", dst, str(lon), str(lat))
    out = json.loads(res.stdout)
    assert haversine_m(out["lon"], out["lat"], elon, elat) < 1.0
    bad = xueliang("geo", "convert", "--from", "wgs84", "--to", "gcj02", "116.4", "139.9")
    assert bad.returncode == 2 and "out of range" in bad.stderr
