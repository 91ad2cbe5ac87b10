"""Grid lookups/s over a synthetic 10,000-grid layer: ours vs a bare shapely STRtree query.

    python bench/grid_lookup.py [--grids 10000] [--points 200000]

Single: GridIndex.resolve() per point (CRS check, conversion, STRtree, names by prefix) and
the same with the event factory's LRU cache cold (distinct points), against
STRtree.query(Point, predicate="intersects") per point. Batched: GridIndex.codes_many()
against one vectorised STRtree.query(points, predicate="intersects"). Targets: 100,000/s
single, 1,000,000/s batched.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Point, box

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.location.grid import CodeScheme, GridFeature, GridIndex  # noqa: E402


def layer(n: int) -> GridIndex:
    side = int(round(n ** 0.5))
    step = 0.002  # ~200 m grids
    feats = [GridFeature(code="990001", name="d", level="district", type=None,
                         geometry=box(117.0, 36.0, 117.0 + side * step, 36.0 + side * step))]
    for i in range(side * side):
        r, c = divmod(i, side)
        street, comm, grid = 1 + i // 10000, 1 + (i // 100) % 100, 1 + i % 100
        code = f"990001{street:03d}{comm:03d}{grid:03d}"
        feats.append(GridFeature(code=code, name=f"g{i}", level="grid", type="city",
                                 geometry=box(117.0 + c * step, 36.0 + r * step,
                                              117.0 + (c + 1) * step, 36.0 + (r + 1) * step)))
    return GridIndex("synthetic", "wgs84", CodeScheme(), feats), side * step


def rate(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grids", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=200_000)
    args = ap.parse_args()
    index, extent = layer(args.grids)
    rng = np.random.default_rng(1)
    lons = 117.0 + rng.random(args.points) * extent
    lats = 36.0 + rng.random(args.points) * extent
    tree = index._tree
    n1 = min(args.points, 50_000)

    def bare_single():
        for x, y in zip(lons[:n1].tolist(), lats[:n1].tolist()):
            tree.query(Point(x, y), predicate="intersects")

    def ours_single():
        for x, y in zip(lons[:n1].tolist(), lats[:n1].tolist()):
            index.resolve(x, y, "wgs84")

    def bare_batch():
        tree.query(shapely.points(lons, lats), predicate="intersects")

    def ours_batch():
        index.codes_many(lons, lats, "wgs84")

    # correctness first: both agree on every point
    got = index.codes_many(lons[:2000], lats[:2000], "wgs84")
    assert got == [index.resolve(x, y, "wgs84")[0].code for x, y in zip(lons[:2000], lats[:2000])]
    for f in (bare_single, ours_single, bare_batch, ours_batch):  # warm-up
        f()
    bs, os_ = rate(bare_single, n1), rate(ours_single, n1)
    bb, ob = rate(bare_batch, args.points), rate(ours_batch, args.points)
    print(f"layer: {len(index.grids)} grids; {n1} single lookups, {args.points} batched")
    print(f"single : ours {os_:>12,.0f}/s  bare STRtree {bs:>12,.0f}/s  ratio {os_ / bs:.2f}  "
          f"target 100,000/s {'met' if os_ >= 100_000 else 'NOT met'}")
    print(f"batched: ours {ob:>12,.0f}/s  bare STRtree {bb:>12,.0f}/s  ratio {ob / bb:.2f}  "
          f"target 1,000,000/s {'met' if ob >= 1_000_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
