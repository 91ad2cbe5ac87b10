"""The `xueliang` command line: the service's own commands (run, replay, eval, check-config, sensors
simulate, cameras, config-reference), and the packages' tools (grid and geo, tokens, models, outbox
parked) registered with the root's config loader."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime

from bridge.http.tokens_cli import add_parser as add_tokens_parser
from bridge.location.location_cli import add_parsers as add_location_parsers
from bridge.store.parked_cli import add_parser as add_parked_parser
from detectors.models_cli import add_fetch_plates_parser, add_models_parser
from xueliang import config_env
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

    add_location_parsers(sub, _load)
    add_fetch_plates_parser(add_models_parser(sub))

    sn = sub.add_parser("sensors", help="sensor tools").add_subparsers(dest="sensors_command", required=True)
    s = sn.add_parser("simulate", help="publish realistic readings for the config's sensors (demo)")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--period", type=float, default=2.0, help="seconds between readings of a sensor")
    s.add_argument("--duration", type=float, help="stop after this many seconds (default: run until stopped)")
    s.set_defaults(func=cmd_sensors_simulate)

    add_tokens_parser(sub, _load)

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

    add_parked_parser(sub, lambda path: _load(_config_path(path)))

    s = sub.add_parser("config-reference", help="print the configuration reference (Markdown)")
    s.set_defaults(func=cmd_config_reference)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
