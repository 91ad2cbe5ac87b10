"""`xueliang grid resolve|check` and `xueliang geo convert`: the grid layer and coordinates from the
command line. The root's command line registers them with its config loader (`load(path)`: the
service config, or exit 2 naming the problem)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

EXIT_CONFIG = 2
CRS = ["wgs84", "gcj02", "bd09", "cgcs2000"]


def cmd_grid_resolve(args: argparse.Namespace) -> int:
    cfg = args.load(args.config)
    from bridge.location.grid import GridIndex

    index = GridIndex.load(cfg.grid.path, cfg.grid.scheme, cfg.grid.crs)
    match, reason = index.resolve(args.lon, args.lat, args.crs)
    doc = {"point": {"lon": args.lon, "lat": args.lat, "crs": args.crs},
           "grid": match.to_ref().model_dump() if match else None}
    if match is None:
        doc["reason"] = reason
    print(json.dumps(doc, ensure_ascii=False, indent=2))
    return 0 if match else 1


def cmd_grid_check(args: argparse.Namespace) -> int:
    from bridge.location.grid import CodeScheme, GridLayerError
    from bridge.location.grid_check import check_layer

    try:
        scheme = CodeScheme(segments=[int(w) for w in args.segments.split(",")],
                            levels=args.levels.split(","))
    except ValueError as exc:
        print(f"--segments/--levels: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        report = check_layer(args.layer, scheme, min_area_m2=args.min_area_m2)
    except GridLayerError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else "\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_geo_convert(args: argparse.Namespace) -> int:
    from bridge.location.coordinates import convert

    try:
        lon, lat = convert(args.lon, args.lat, args.src, args.dst)
    except ValueError as exc:
        print(f"geo convert: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(json.dumps({"lon": round(lon, 8), "lat": round(lat, 8), "crs": args.dst,
                      "from": {"lon": args.lon, "lat": args.lat, "crs": args.src}}))
    return 0


def add_parsers(sub, load: Callable[[str | None], Any]) -> None:
    """Register `grid resolve|check` and `geo convert`."""
    g = sub.add_parser("grid", help="grid layer tools").add_subparsers(dest="grid_command", required=True)
    s = g.add_parser("resolve", help="print the grid of a point as JSON")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("lon", type=float)
    s.add_argument("lat", type=float)
    s.add_argument("--crs", default="wgs84", choices=CRS)
    s.set_defaults(func=cmd_grid_resolve, load=load)
    s = g.add_parser("check", help="check a layer: invalid polygons, overlaps, gaps; exit 1 on any")
    s.add_argument("layer", help="GeoJSON FeatureCollection of the grid layer")
    s.add_argument("--segments", default="6,3,3,3", help="code digits per level, top first")
    s.add_argument("--levels", default="district,street,community,grid", help="level names, top first")
    s.add_argument("--min-area-m2", type=float, default=1.0,
                   help="ignore overlaps/gaps smaller than this (edge slivers)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=cmd_grid_check)

    geo = sub.add_parser("geo", help="coordinate tools").add_subparsers(dest="geo_command", required=True)
    s = geo.add_parser("convert", help="convert a point between wgs84, gcj02, bd09, cgcs2000; prints JSON")
    s.add_argument("--from", dest="src", required=True, choices=CRS)
    s.add_argument("--to", dest="dst", required=True, choices=CRS)
    s.add_argument("lon", type=float)
    s.add_argument("lat", type=float)
    s.set_defaults(func=cmd_geo_convert)
