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
    def __init__(self, geoms: list, n: int | None = None) -> None:
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        # About 12 cells across a grid's width: two thirds of a grid's area is in its pure cells.
        self.n = n or int(min(2048, max(64, 12 * math.sqrt(len(geoms)))))
        self.x0, self.y0 = minx, miny
        self.dx = (maxx - minx) / self.n or 1.0
        self.dy = (maxy - miny) / self.n or 1.0
        # Each grid is tested only against the cells inside its own bounds (with a margin of one
        # cell for rounding): about n² tests in all, not n² tree queries, in chunks to bound memory.
        # `contains_properly` is "within and not touching the boundary": a point on an edge is a tie.
        arr = np.asarray(geoms, dtype=object)
        shapely.prepare(arr)
        b = shapely.bounds(arr)
        i0 = np.clip(((b[:, 0] - minx) // self.dx).astype(np.int64), 0, self.n)
        i1 = np.clip(((b[:, 2] - minx) // self.dx).astype(np.int64) + 1, 0, self.n)
        j0 = np.clip(((b[:, 1] - miny) // self.dy).astype(np.int64), 0, self.n)
        j1 = np.clip(((b[:, 3] - miny) // self.dy).astype(np.int64) + 1, 0, self.n)
        w, h = np.maximum(i1 - i0, 0), np.maximum(j1 - j0, 0)
        cells, grids = [], []
        start = 0
        while start < len(arr):  # grids whose candidate cells add up to about 200,000 a chunk
            stop = start + max(1, int(np.searchsorted(np.cumsum(w[start:] * h[start:]), 200_000)))
            g = np.repeat(np.arange(start, stop), w[start:stop] * h[start:stop])
            k = np.arange(len(g)) - np.repeat(np.cumsum(w[start:stop] * h[start:stop]) - w[start:stop] * h[start:stop],
                                              w[start:stop] * h[start:stop])
            ix, iy = i0[g] + k % w[g], j0[g] + k // w[g]
            boxes = shapely.box(minx + ix * self.dx, miny + iy * self.dy,
                                minx + (ix + 1) * self.dx, miny + (iy + 1) * self.dy)
            inside = shapely.contains_properly(arr[g], boxes)
            cells.append((iy * self.n + ix)[inside])
            grids.append(g[inside])
            start = stop
        cell = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
        grid = np.concatenate(grids) if grids else np.zeros(0, dtype=np.int64)
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
