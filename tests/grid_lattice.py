"""A big grid layer for map tests: an n×n lattice of square grids with hierarchical 15-digit codes.

Columns are cut into 10 streets (bands of n/10 columns), each street into 10 communities (blocks
of n/10 rows), each community into (n/10)² grids: codes 990001 + street 001..010 + community
001..010 + grid 001..; every street and community is a feature of its own with a name.
"""
from __future__ import annotations

import json
from pathlib import Path

DISTRICT = "990001"


def _box(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def grid_code(n: int, i: int, j: int) -> str:
    """Code of the grid in column `i`, row `j` (0-based from the south-west corner)."""
    k = n // 10
    return f"{DISTRICT}{i // k + 1:03d}{j // k + 1:03d}{(i % k) * k + j % k + 1:03d}"


def write_lattice(path: Path, *, n: int = 100, lon0: float = 116.98, lat0: float = 36.63,
                  cell: float = 0.001) -> Path:
    """Write the lattice (n a multiple of 10, at most 310) south-west corner at (lon0, lat0)."""
    if n % 10 or not 10 <= n <= 310:
        raise ValueError(f"n must be a multiple of 10 between 10 and 310, got {n}")
    k = n // 10
    feats = [{"type": "Feature", "properties": {"code": DISTRICT, "level": "district", "name": "格点示范区"},
              "geometry": _box(lon0, lat0, lon0 + n * cell, lat0 + n * cell)}]
    for s in range(10):
        sx = lon0 + s * k * cell
        feats.append({"type": "Feature", "properties": {"code": f"{DISTRICT}{s + 1:03d}", "level": "street",
                                                        "name": f"第{s + 1}街道"},
                      "geometry": _box(sx, lat0, sx + k * cell, lat0 + n * cell)})
        for c in range(10):
            cy = lat0 + c * k * cell
            feats.append({"type": "Feature", "properties": {"code": f"{DISTRICT}{s + 1:03d}{c + 1:03d}",
                                                            "level": "community", "name": f"{s + 1}街{c + 1}社区"},
                          "geometry": _box(sx, cy, sx + k * cell, cy + k * cell)})
    for i in range(n):
        for j in range(n):
            x, y = lon0 + i * cell, lat0 + j * cell
            feats.append({"type": "Feature",
                          "properties": {"code": grid_code(n, i, j), "level": "grid", "type": "city",
                                         "name": f"{i // k + 1}街{j // k + 1}社区{(i % k) * k + j % k + 1}网格"},
                          "geometry": _box(round(x, 7), round(y, 7), round(x + cell, 7), round(y + cell, 7))})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False))
    return path
