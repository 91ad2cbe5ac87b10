"""Per-object location: a camera's image-to-ground homography from surveyed control points.

A camera sees a street, not a point: an overflowing bin at the left of the picture and a stall
at the right may lie in two different grids. With at least four control points (a pixel in the
camera's picture and the lon/lat of the same spot on the ground) the flat ground plane maps to
the image by a homography; an object's bottom-centre (where it touches the ground) is projected
back to lon/lat. The fit runs in local metres around the first point, which keeps it well
conditioned; the control points must reproject within `max_error_m` or the config is refused.
"""
from __future__ import annotations

import itertools

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.events.model import Crs
from bridge.location.coordinates import LocalMetric


class ControlPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pixel: tuple[float, float] = Field(
        description="Image position [x, y] in pixels of a `image_size` picture, origin top-left.")
    lon: float = Field(ge=-180, le=180, description="Longitude of the same spot on the ground.")
    lat: float = Field(ge=-90, le=90, description="Latitude of the same spot on the ground.")


class GroundConfig(BaseModel):
    """Camera image-to-ground mapping; events then carry the object's location, not the camera's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crs: Crs = Field("wgs84", description="Coordinate system of the control points' lon/lat.")
    image_size: tuple[int, int] = Field(
        description="[width, height] in pixels of the picture the control points were read from.")
    control_points: list[ControlPoint] = Field(
        min_length=4, description="At least 4 pixel <-> lon/lat pairs on the ground plane, "
        "no three on one line; more points are fitted by least squares.")
    max_error_m: float = Field(
        5.0, gt=0, description="Largest allowed distance between a control point's surveyed "
        "position and where the fitted homography puts it, in metres.")

    @model_validator(mode="after")
    def _fit(self) -> GroundConfig:
        w, h = self.image_size
        if w <= 0 or h <= 0:
            raise ValueError(f"image_size {list(self.image_size)} must be positive [width, height]")
        for i, p in enumerate(self.control_points):
            if not (0 <= p.pixel[0] <= w and 0 <= p.pixel[1] <= h):
                raise ValueError(f"control_points[{i}].pixel {list(p.pixel)} lies outside the "
                                 f"{w}x{h} image")
        GroundProjector(self)  # raises ValueError naming the offending control points
        return self


def _collinear(pts: np.ndarray, tol: float) -> tuple[int, int, int] | None:
    for i, j, k in itertools.combinations(range(len(pts)), 3):
        a, b, c = pts[i], pts[j], pts[k]
        area2 = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
        scale = max(np.linalg.norm(b - a), np.linalg.norm(c - a), np.linalg.norm(c - b), 1e-9)
        if area2 / scale < tol:  # distance of one point from the line through the others
            return i, j, k
    return None


def _apply(H: np.ndarray, px: np.ndarray) -> np.ndarray:
    hom = np.column_stack([px, np.ones(len(px))]) @ H.T
    return hom[:, :2] / hom[:, 2:3]


def _fit(px: np.ndarray, ground: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(H, per-point error in m, sign of w in front) or None if no plane in front fits."""
    H, _ = cv2.findHomography(px, ground, 0)  # 0: least squares over all points
    if H is None or not np.all(np.isfinite(H)) or abs(np.linalg.det(H)) < 1e-12:
        return None
    w = px @ H[2, :2] + H[2, 2]
    if not (np.all(w > 0) or np.all(w < 0)):  # some points would lie behind the camera
        return None
    return H, np.hypot(*(_apply(H, px) - ground).T), 1.0 if w[0] > 0 else -1.0


class GroundProjector:
    """Fitted homography: pixel (x, y) -> (lon, lat) in `config.crs`, or None above the horizon."""

    def __init__(self, config: GroundConfig) -> None:
        self.config = config
        pts = config.control_points
        self.metric = LocalMetric(pts[0].lon, pts[0].lat)
        px = np.array([p.pixel for p in pts], dtype=np.float64)
        ground = np.array([self.metric.to_xy(p.lon, p.lat) for p in pts], dtype=np.float64)
        for name, arr, tol in (("pixel", px, 2.0), ("lon/lat", ground, 0.5)):
            bad = _collinear(arr, tol) if len(pts) == 4 else None
            if bad is not None or np.linalg.matrix_rank(arr - arr.mean(axis=0), tol=tol) < 2:
                which = ", ".join(f"control_points[{i}]" for i in (bad or range(len(pts))))
                raise ValueError(f"{which}: {name} positions lie on one line (or repeat); a "
                                 "homography needs 4 points with no three in a line")
        fit = _fit(px, ground)
        if fit is None or fit[1].max() > config.max_error_m:
            raise ValueError(self._diagnose(px, ground, fit))
        self.H, self.errors_m, self._front = fit

    def _diagnose(self, px: np.ndarray, ground: np.ndarray, fit) -> str:
        """Name the control point that spoils the fit: the one whose removal fits the rest."""
        limit = self.config.max_error_m
        if len(px) >= 5:
            best = None
            for i in range(len(px)):
                keep = np.arange(len(px)) != i
                rest = _fit(px[keep], ground[keep])
                if rest is not None and rest[1].max() <= limit:
                    off = float(np.hypot(*(_apply(rest[0], px[i:i + 1])[0] - ground[i])))
                    if best is None or off > best[1]:
                        best = (i, off)
            if best is not None:
                return (f"control_points[{best[0]}]: lies {best[1]:.1f} m from where the other "
                        f"points put it (max_error_m {limit}); check its pixel and lon/lat")
        if fit is None:
            return ("control_points: no homography fits these points in front of the camera; "
                    "check every pixel and lon/lat")
        worst = int(np.argmax(fit[1]))
        return (f"control_points[{worst}]: reprojects {fit[1][worst]:.1f} m from its lon/lat "
                f"(max_error_m {limit}); check its pixel and lon/lat")


    def project(self, x: float, y: float) -> tuple[float, float] | None:
        """(lon, lat) of the ground under pixel (x, y); None if it is at or above the horizon."""
        w = self.H[2, 0] * x + self.H[2, 1] * y + self.H[2, 2]
        if w * self._front <= 1e-12:
            return None
        gx, gy = _apply(self.H, np.array([[x, y]], dtype=np.float64))[0]
        lon, lat = self.metric.to_lonlat(float(gx), float(gy))
        return lon, lat

    def project_bbox(self, bbox: tuple[float, float, float, float]) -> tuple[float, float] | None:
        """(lon, lat) of a normalised box's bottom-centre: where the object touches the ground."""
        w, h = self.config.image_size
        x1, _, x2, y2 = bbox
        return self.project((x1 + x2) / 2 * w, y2 * h)
