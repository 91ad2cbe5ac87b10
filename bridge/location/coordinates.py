"""Coordinate systems: move a point between WGS-84, GCJ-02, BD-09 and CGCS2000.

Cameras and sensors report WGS-84 or GCJ-02 (Amap/Tencent), some platforms BD-09 (Baidu),
and grid layers come in whatever the city's map uses. A point must be converted into the
layer's system before the point-in-polygon test, otherwise a 100-700 m offset silently puts
an event in the neighbouring grid.

The arithmetic is the public-domain `prcoords` library; note that its `Coords` are (lat, lon),
while everything in this project is (lon, lat) like GeoJSON.
"""
from __future__ import annotations

import math
import warnings
from typing import get_args

import prcoords

from bridge.events.model import Crs

CRS_NAMES: tuple[str, ...] = get_args(Crs)


def check_crs(crs: str, what: str = "crs") -> None:
    """Raise ValueError unless `crs` is one of CRS_NAMES."""
    if crs not in CRS_NAMES:
        raise ValueError(f"unknown {what} {crs!r}; expected one of {', '.join(CRS_NAMES)}")


def _check_point(lon: float, lat: float, crs: str) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"point ({lon}, {lat} {crs}) is not a finite longitude/latitude")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(
            f"point ({lon}, {lat} {crs}) is out of range: need -180 <= lon <= 180, -90 <= lat <= 90"
            " (are lon and lat swapped, or is this a projected coordinate in metres?)"
        )


def _in_china(lon: float, lat: float) -> bool:
    return prcoords.sanity_in_china_p(prcoords.Coords(lat, lon))


def _outside_china(lon: float, lat: float, src: str, dst: str) -> tuple[float, float]:
    # prcoords' rule: the GCJ-02 offset only exists inside its China bounding box; outside it a
    # point is returned as-is with a warning. Baidu's maps do the same for BD-09 (abroad, BD-09
    # is WGS-84), but prcoords' BD-09 functions apply Baidu's offset everywhere, and its precise
    # GCJ-02 inverse (gcj_wgs_bored) iterates with the check turned off. So the rule is applied
    # here once, for every pair and both directions: what the warning says is what happens, and
    # round trips stay exact.
    warnings.warn(
        f"point ({lon}, {lat} {src}) is outside China: no GCJ-02/BD-09 offset applies, returned as-is in {dst}",
        stacklevel=3,
    )
    return lon, lat


def _to_gcj(lon: float, lat: float, src: str) -> tuple[float, float]:
    if src == "wgs84":
        c = prcoords.wgs_gcj(prcoords.Coords(lat, lon))
    elif src == "bd09":
        # BD-09 is GCJ-02 plus Baidu's own offset.
        c = prcoords.bd_gcj_bored(prcoords.Coords(lat, lon))
    else:  # gcj02
        return lon, lat
    return c.lon, c.lat


def _from_gcj(lon: float, lat: float, dst: str) -> tuple[float, float]:
    if dst == "wgs84":
        c = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon))  # iterative, ~0.1 mm
    elif dst == "bd09":
        c = prcoords.gcj_bd(prcoords.Coords(lat, lon))
    else:  # gcj02
        return lon, lat
    return c.lon, c.lat


def convert(lon: float, lat: float, src: Crs, dst: Crs) -> tuple[float, float]:
    """Return (lon, lat) of the point `lon, lat` in `src` expressed in `dst`.

    Raises ValueError for an unknown CRS or a non-finite / out-of-range lon or lat. Outside
    China (prcoords' bounding box, tested on the given point) no offset applies in either
    direction: the point comes back as-is, with a warning.
    Every path goes through GCJ-02 (BD-09 is defined on top of it), using prcoords' precise
    (iterative) inverses, so a round trip is exact to well under a metre.
    """
    check_crs(src, "source crs")
    check_crs(dst, "target crs")
    lon, lat = float(lon), float(lat)
    _check_point(lon, lat, src)
    # CGCS2000 and WGS-84 differ by centimetres to a metre (different realisations, same
    # ellipsoid up to a tiny flattening difference): far below camera/sensor position accuracy
    # and grid sizes, so CGCS2000 lon/lat is treated as WGS-84.
    src = "wgs84" if src == "cgcs2000" else src
    dst = "wgs84" if dst == "cgcs2000" else dst
    if src == dst:
        return lon, lat
    if not _in_china(lon, lat):  # outside China WGS-84, GCJ-02 and BD-09 are one and the same
        return _outside_china(lon, lat, src, dst)
    return _from_gcj(*_to_gcj(lon, lat, src), dst)


EARTH_RADIUS_M = 6371008.8  # mean Earth radius


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle (haversine) distance in metres between two lon/lat points of one CRS."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class LocalMetric:
    """Equirectangular east/north metres around an origin: lon/lat <-> (x, y) metres.

    Exact enough (well under 0.1 %) over a district of a few km, which is all it is used for:
    overlap/gap areas of a grid layer and a camera's ground plane. Arrays work too.
    """

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self._kx = math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        self._ky = math.radians(1.0) * EARTH_RADIUS_M

    def to_xy(self, lon, lat):
        return (lon - self.lon0) * self._kx, (lat - self.lat0) * self._ky

    def to_lonlat(self, x, y):
        return self.lon0 + x / self._kx, self.lat0 + y / self._ky
