"""The `xueliang` command line."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from xueliang import cli_plates, config_env
from xueliang.config import ENV_ONLY, ConfigError, ServiceConfig, load_config

EXIT_CONFIG = 2


def _config_path(given: str | None) -> str | None:
    """-c, else $XUELIANG_CONFIG, else None: the config from XUELIANG__ variables alone (if there are any)."""
    path = given or os.environ.get(config_env.CONFIG_VAR)
    if path is None and not config_env.overrides(os.environ):
        print(f"no config: pass -c FILE, or set {config_env.CONFIG_VAR}, or XUELIANG__SECTION__FIELD "
              "variables (see README, 'Environment variables')", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    return path


def _load(path: str | None) -> ServiceConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        path = path or ENV_ONLY
        for line in exc.lines():
            print(line, file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s); nothing was started", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    args.file = _config_path(args.file)
    cfg = _load(args.file)
    args.file = args.file or ENV_ONLY
    print(f"{args.file}: ok ({len(cfg.cameras)} camera(s), {sum(len(c.rules) for c in cfg.cameras)} rule(s), "
          f"{len(cfg.sensors.devices)} sensor(s))")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    args.config = _config_path(args.config)
    cfg = _load(args.config)
    args.config = args.config or ENV_ONLY
    from xueliang.logs import setup_logging
    from xueliang.service import Service

    setup_logging(cfg.log.level, cfg.log.format)
    if args.port is not None:
        cfg.api.port = args.port
    if args.host is not None:
        cfg.api.host = args.host
    from bridge.store.sqlite_files import FileInUseError
    from ingest.mqtt import MqttRefused

    try:
        asyncio.run(Service(cfg).run())
    except MqttRefused as exc:
        print(f"{args.config}: mqtt: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FileInUseError as exc:
        print(f"{args.config}: outbox.path: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    from xueliang.logs import setup_logging
    from xueliang.replay import replay

    setup_logging(cfg.log.level, cfg.log.format)
    try:
        cfg.camera(args.camera)
    except KeyError as exc:
        print(f"{args.config}: {exc.args[0]}", file=sys.stderr)
        return EXIT_CONFIG
    start = None
    if args.start:
        start = datetime.fromisoformat(args.start)
        if start.tzinfo is None:
            print(f"--start {args.start!r} needs a UTC offset, e.g. 2026-11-22T08:00:00+08:00", file=sys.stderr)
            return EXIT_CONFIG
    out = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else sys.stdout
    try:
        stats = replay(cfg, args.camera, out, source=args.source, start=start)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"replayed {stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} frames/s), "
          f"{stats.events} events", file=sys.stderr)
    return 0


def cmd_grid_resolve(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
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


def cmd_sensors_simulate(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    from xueliang.logs import setup_logging
    from ingest.sensor_simulator import simulate

    setup_logging(cfg.log.level, cfg.log.format)
    try:
        sent = simulate(cfg, period_s=args.period, duration_s=args.duration)
    except ValueError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 0
    print(f"published {sent} readings", file=sys.stderr)
    return 0


def _token_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(tokens file, console db): from --file, else the config's, else $XUELIANG_DATA_DIR or .data."""
    if args.config:
        cfg = _load(args.config)
        tokens, db = cfg.tokens_path, cfg.console_db_path
    else:
        data = Path(os.environ.get("XUELIANG_DATA_DIR", ".data"))
        tokens, db = data / "tokens.yaml", data / "console.sqlite3"
    if args.file:
        tokens = Path(args.file)
        if not args.config:
            db = tokens.parent / "console.sqlite3"
    return tokens, db


def cmd_tokens(args: argparse.Namespace) -> int:
    import getpass

    from bridge.http.auth import TokenFileError, new_token, read_token_file
    from bridge.http.token_admin import add_token, cameras_problem, revoke_tokens, token_lines, token_yaml

    path, db_path = _token_paths(args)
    try:
        tokens = read_token_file(path)
    except TokenFileError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    actor = f"cli:{getpass.getuser()}"
    if args.tokens_command == "list":
        for line in token_lines(tokens):
            print(line)
        return 0
    if args.tokens_command == "revoke":
        count = revoke_tokens(path, db_path, tokens, args.name, actor)
        if not count:
            print(f"{path}: no token named or with id {args.name!r}", file=sys.stderr)
            return 1
        print(f"revoked {count} token(s) of {args.name!r}")
        return 0
    problem = cameras_problem(args.role, args.cameras)
    if problem is not None:
        print(f"--cameras: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.print_yaml:  # for `api.auth.tokens` in a config file; nothing is written
        token, record = new_token(args.name, args.role, args.cameras)
        print(token_yaml(record), end="")
    else:
        token, record = add_token(path, db_path, tokens, args.name, args.role, args.cameras, actor)
        print(f"added {args.role} token {record.id} for {args.name!r} to {path}", file=sys.stderr)
    print("the token is shown once; keep it secret:", file=sys.stderr)
    print(token)
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from xueliang.reference import config_reference

    print(config_reference())
    return 0


def cmd_cameras(args: argparse.Namespace) -> int:
    """The camera registry topic of a cluster (docs/scale-out.md)."""
    cfg = _load(args.config)
    bootstrap = args.bootstrap or cfg.kafka.bootstrap_servers
    if not bootstrap:
        print(f"{args.config}: kafka.bootstrap_servers: not set and no --bootstrap given", file=sys.stderr)
        return EXIT_CONFIG
    from ingest.redact import redact_url
    from bridge.kafka import camera_registry as registry

    c = cfg.cluster
    if args.cameras_command == "publish":
        wanted = [cam for cam in cfg.cameras if not args.only or cam.id in args.only]
        where = asyncio.run(registry.publish(bootstrap, c, {cam.id: cam.model_dump_json().encode() for cam in wanted},
                                                idempotent=cfg.kafka.idempotent))
        for cam in wanted:
            print(f"{cam.id}\tpartition {where[cam.id]}\t{redact_url(cam.url)}")
        print(f"published {len(wanted)} camera(s) to {c.control_topic} on {bootstrap}", file=sys.stderr)
    elif args.cameras_command == "remove":
        asyncio.run(registry.publish(bootstrap, c, {}, remove=args.ids, idempotent=cfg.kafka.idempotent))
        print(f"removed {len(args.ids)} camera(s) from {c.control_topic}", file=sys.stderr)
    else:
        counts = asyncio.run(registry.ensure_cluster_topics(bootstrap, c))
        for cid, (p, value) in sorted(asyncio.run(registry.placements(bootstrap, c.control_topic,
                                                                       counts[c.control_topic])).items()):
            if value is not None:
                print(f"{cid}\tpartition {p}\t{redact_url(json.loads(value).get('url', ''))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xueliang", description="Video and IoT incidents into the grid dispatch queue.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="run the service: cameras, outbox, Kafka dispatch, API")
    s.add_argument("-c", "--config", help=f"config file (default: ${config_env.CONFIG_VAR}); "
                   "XUELIANG__SECTION__FIELD variables override its fields")
    s.add_argument("--port", type=int, help="override api.port")
    s.add_argument("--host", help="override api.host (e.g. 0.0.0.0 inside a container)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("replay", help="process a recording as fast as possible, events as JSON lines")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--camera", required=True, help="camera id whose zones and rules apply")
    s.add_argument("--source", help="video file to use instead of the camera's url")
    s.add_argument("--jsonl", help="write events here instead of stdout")
    s.add_argument("--start", help="recording start time, ISO 8601 with offset (default: file metadata, else now)")
    s.set_defaults(func=cmd_replay)

    from xueliang.cli_eval import add_eval_parser

    add_eval_parser(sub)

    s = sub.add_parser("check-config", help="validate a config file; exit 2 on any error")
    s.add_argument("file", nargs="?", help=f"config file (default: ${config_env.CONFIG_VAR})")
    s.set_defaults(func=cmd_check_config)

    g = sub.add_parser("grid", help="grid layer tools").add_subparsers(dest="grid_command", required=True)
    s = g.add_parser("resolve", help="print the grid of a point as JSON")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("lon", type=float)
    s.add_argument("lat", type=float)
    s.add_argument("--crs", default="wgs84", choices=["wgs84", "gcj02", "bd09", "cgcs2000"])
    s.set_defaults(func=cmd_grid_resolve)
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
    s.add_argument("--from", dest="src", required=True, choices=["wgs84", "gcj02", "bd09", "cgcs2000"])
    s.add_argument("--to", dest="dst", required=True, choices=["wgs84", "gcj02", "bd09", "cgcs2000"])
    s.add_argument("lon", type=float)
    s.add_argument("lat", type=float)
    s.set_defaults(func=cmd_geo_convert)

    from xueliang.cli_models import add_models_parser

    cli_plates.add_parser(add_models_parser(sub))

    sn = sub.add_parser("sensors", help="sensor tools").add_subparsers(dest="sensors_command", required=True)
    s = sn.add_parser("simulate", help="publish realistic readings for the config's sensors (demo)")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--period", type=float, default=2.0, help="seconds between readings of a sensor")
    s.add_argument("--duration", type=float, help="stop after this many seconds (default: run until stopped)")
    s.set_defaults(func=cmd_sensors_simulate)

    tk = sub.add_parser("tokens", help="API tokens (stored hashed)").add_subparsers(dest="tokens_command", required=True)
    for name, helptext in (("add", "make a token and print it once"), ("list", "list tokens (never the tokens themselves)"),
                           ("revoke", "remove a token by name or id")):
        s = tk.add_parser(name, help=helptext)
        s.add_argument("-c", "--config", help="service config: its api.auth.tokens_file and audit log")
        s.add_argument("--file", help="token file (default: <data_dir>/tokens.yaml)")
        if name == "add":
            s.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
            s.add_argument("--cameras", type=lambda v: [c for c in v.split(",") if c], default=[],
                           help="operator: comma-separated camera ids it may tune, or '*'")
            s.add_argument("--print-yaml", action="store_true",
                           help="print the hashed record for api.auth.tokens instead of writing the file")
        if name != "list":
            s.add_argument("name", help="who holds it (add), or the name or id to revoke")
        s.set_defaults(func=cmd_tokens)

    cm = sub.add_parser("cameras", help="the cluster's camera registry topic").add_subparsers(
        dest="cameras_command", required=True)
    for name, helptext in (("publish", "write the config's cameras to the registry (each keeps its partition)"),
                           ("list", "list the registered cameras and their partitions"),
                           ("remove", "remove cameras from the registry (their workers stop them)")):
        s = cm.add_parser(name, help=helptext)
        s.add_argument("-c", "--config", required=True, help="config with `cameras:` (publish) and `cluster:` topics")
        s.add_argument("--bootstrap", help="Kafka bootstrap servers (default: kafka.bootstrap_servers)")
        if name == "publish":
            s.add_argument("--only", nargs="+", help="publish only these camera ids")
        if name == "remove":
            s.add_argument("ids", nargs="+")
        s.set_defaults(func=cmd_cameras)

    from xueliang.cli_outbox import add_parser as add_outbox_parser

    add_outbox_parser(sub)

    s = sub.add_parser("config-reference", help="print the configuration reference (Markdown)")
    s.set_defaults(func=cmd_config_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
