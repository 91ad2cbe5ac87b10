"""A uniform cell index in front of the grid STRtree.

Most points of a city fall deep inside one grid. The layer's bounding box is cut into n×n cells;
a cell that lies in the interior of exactly one grid (touching no boundary) answers with that
grid by arithmetic alone. Only points in cells that a boundary crosses go to the STRtree and
the point-in-polygon test, so ties on shared edges keep the STRtree's rule.
"""
from __future__ import annotations

import math

import numpy as np
import shapely


class CellIndex:
    def __init__(self, tree: shapely.STRtree, geoms: list, n: int | None = None) -> None:
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        # About 12 cells across a grid's width: two thirds of a grid's area is in its pure cells.
        self.n = n or int(min(2048, max(64, 12 * math.sqrt(len(geoms)))))
        self.x0, self.y0 = minx, miny
        self.dx = (maxx - minx) / self.n or 1.0
        self.dy = (maxy - miny) / self.n or 1.0
        ix, iy = np.meshgrid(np.arange(self.n), np.arange(self.n))
        ix, iy = ix.ravel(), iy.ravel()
        boxes = shapely.box(minx + ix * self.dx, miny + iy * self.dy,
                            minx + (ix + 1) * self.dx, miny + (iy + 1) * self.dy)
        cell, grid = tree.query(boxes, predicate="within")
        # Within but touching the grid's boundary is not enough: a point on that edge is a tie.
        boundaries = shapely.boundary(np.asarray(geoms, dtype=object))
        interior = ~shapely.intersects(boxes[cell], boundaries[grid])
        cell, grid = cell[interior], grid[interior]
        self.owner = np.full(self.n * self.n, -1, dtype=np.int64)
        self.owner[cell] = grid
        counts = np.bincount(cell, minlength=self.n * self.n)
        self.owner[counts > 1] = -1  # overlapping grids (a broken layer): let the tree decide
        self.pure_fraction = float((self.owner >= 0).mean())

    def one(self, x: float, y: float) -> int:
        """Index of the grid owning the point's cell, or -1 when the tree must decide."""
        ix, iy = int((x - self.x0) // self.dx), int((y - self.y0) // self.dy)
        if 0 <= ix < self.n and 0 <= iy < self.n:
            return int(self.owner[iy * self.n + ix])
        return -1

    def many(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        ix = np.floor((xs - self.x0) / self.dx)
        iy = np.floor((ys - self.y0) / self.dy)
        inside = (ix >= 0) & (ix < self.n) & (iy >= 0) & (iy < self.n)  # NaN compares False
        out = np.full(len(xs), -1, dtype=np.int64)
        out[inside] = self.owner[(iy[inside] * self.n + ix[inside]).astype(np.int64)]
        return out
